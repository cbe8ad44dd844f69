import { describe, expect, it } from 'vitest';
import { KeyedRwLock } from '../../src/chunkserver/chunk-locks.js';
import { PushBuffers } from '../../src/chunkserver/push-buffers.js';
import { GfsError } from '../../src/common/errors.js';

describe('PushBuffers', () => {
  it('bounds the total, frees on drop, expires unused buffers', () => {
    const pb = new PushBuffers(100, 1_000);
    try {
      const g = pb.begin('a');
      pb.append('a', g, Buffer.alloc(60));
      expect(pb.get('a')).toBeUndefined(); // still arriving
      expect(pb.complete('a', g)).toBe(60);
      expect(pb.get('a')!.length).toBe(60);
      const g2 = pb.begin('b');
      expect(() => pb.append('b', g2, Buffer.alloc(50))).toThrow(GfsError);
      expect(() => pb.begin('c', 41)).toThrow(/push buffers full/);
      pb.drop('a');
      pb.append('b', g2, Buffer.alloc(50));
      pb.complete('b', g2);
      expect(pb.bytes).toBe(50);
      expect(pb.sweep(Date.now() + 500)).toBe(0);
      expect(pb.sweep(Date.now() + 2_000)).toBe(1);
      expect(pb.bytes).toBe(0);
      expect(pb.get('b')).toBeUndefined();
      // A restarted push replaces the old one; the old writer can no longer add to it.
      const g3 = pb.begin('d');
      const g4 = pb.begin('d');
      expect(() => pb.append('d', g3, Buffer.alloc(1))).toThrow(/replaced/);
      pb.abort('d', g3); // stale abort is ignored
      pb.append('d', g4, Buffer.alloc(1));
      expect(pb.bytes).toBe(1);
    } finally {
      pb.close();
    }
  });

  it('rejects bad data ids', () => {
    expect(() => PushBuffers.checkId('')).toThrow(/bad data id/);
    expect(() => PushBuffers.checkId('x'.repeat(300))).toThrow(/bad data id/);
    expect(PushBuffers.checkId('ok-1')).toBe('ok-1');
  });
});

describe('KeyedRwLock', () => {
  it('shares readers, serialises writers, and lets a waiting writer go before new readers', async () => {
    const lock = new KeyedRwLock<number>();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const r1 = lock.shared(1, async () => {
      log.push('r1 start');
      await gate;
      log.push('r1 end');
    });
    const r2 = lock.shared(1, async () => void log.push('r2'));
    const w = lock.exclusive(1, async () => void log.push('w'));
    const r3 = lock.shared(1, async () => void log.push('r3'));
    const other = lock.exclusive(2, async () => void log.push('other key'));
    await new Promise((r) => setTimeout(r, 10));
    release();
    await Promise.all([r1, r2, w, r3, other]);
    expect(log.indexOf('r2')).toBeLessThan(log.indexOf('r1 end'));
    expect(log.indexOf('other key')).toBeLessThan(log.indexOf('r1 end'));
    expect(log.slice(-2)).toEqual(['w', 'r3']);
    expect(lock.size).toBe(0);
  });
});
