import { describe, expect, it } from 'vitest';
import { taskLimit } from '../../src/common/task-limit.js';

describe('taskLimit', () => {
  it('runs at most max at once, the rest in the order they came, and passes results and errors through', async () => {
    const limit = taskLimit(3);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const task = (i: number) => async () => {
      started.push(i);
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 1 + (i % 3)));
      running--;
      if (i === 7) throw new Error('seven');
      return i * 10;
    };
    const all = Array.from({ length: 2000 }, (_, i) => limit(task(i)).catch((e: Error) => e.message));
    expect(limit.activeCount).toBe(3);
    expect(limit.pendingCount).toBe(1997);
    const out = await Promise.all(all);
    expect(peak).toBe(3);
    expect(started).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(out[7]).toBe('seven');
    expect(out[1999]).toBe(19990);
    expect([limit.activeCount, limit.pendingCount]).toEqual([0, 0]);
  });

  it('a task that throws at once is a rejection, and frees its slot', async () => {
    const limit = taskLimit(1);
    await expect(limit(() => { throw new Error('sync'); })).rejects.toThrow('sync');
    expect(await limit(async () => 'next')).toBe('next');
    expect(() => taskLimit(0)).toThrow(/positive integer/);
  });
});
