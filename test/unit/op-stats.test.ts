import { describe, expect, it } from 'vitest';
import { OpStats } from '../../src/common/op-stats.js';

describe('OpStats.time', () => {
  it('records successes and failures, including a call that throws before returning a promise', async () => {
    const s = new OpStats();
    await expect(s.time('op', () => Promise.resolve(7))).resolves.toBe(7);
    await expect(s.time('op', () => Promise.reject(new Error('later')))).rejects.toThrow('later');
    await expect(s.time('op', () => { throw new Error('at once'); })).rejects.toThrow('at once');
    const snap = s.snapshot().op!;
    expect(snap.count).toBe(3);
    expect(snap.errors).toBe(2);
  });
});
