import { describe, expect, test } from 'vitest';
import type { Attr } from '../../src/client/api.js';
import { HEAD_BYTES_MAX, OpenPrefetch } from '../../src/fuse/open-prefetch.js';

const file = (size: number) => ({ ino: 7, size }) as Attr;

describe('open-time head reads', () => {
  test('only small, non-empty files of known size, rounded up to whole pages', () => {
    const p = new OpenPrefetch();
    expect(p.headBytes(undefined, false)).toBe(0);
    expect(p.headBytes(file(0), false)).toBe(0);
    expect(p.headBytes(file(HEAD_BYTES_MAX + 1), false)).toBe(0);
    expect(p.headBytes(file(1), false)).toBe(4096);
    expect(p.headBytes(file(4097), false)).toBe(8192);
    expect(p.headBytes(file(HEAD_BYTES_MAX), false)).toBe(HEAD_BYTES_MAX);
  });

  test('cache-keeping opens stop guessing while the guesses go unused, and probe now and then', () => {
    const p = new OpenPrefetch();
    for (let i = 0; i < 32; i++) p.outcome(false);
    const tries = Array.from({ length: 64 }, () => p.headBytes(file(4096), true) > 0).filter(Boolean).length;
    expect(tries).toBe(4); // one in 16
    expect(p.headBytes(file(4096), false)).toBe(4096); // an open that drops the pages always reads
    for (let i = 0; i < 16; i++) p.outcome(true);
    expect(p.headBytes(file(4096), true)).toBe(4096);
  });
});
