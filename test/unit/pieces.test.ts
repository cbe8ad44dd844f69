import { describe, expect, it } from 'vitest';
import { singlePiece, splitRange } from '../../src/client/pieces.js';

describe('splitRange', () => {
  it('never crosses a chunk boundary or exceeds the piece size, and covers the range exactly', () => {
    const chunk = 1000;
    for (const [off, len, max] of [
      [0, 1, 64],
      [999, 2, 64],
      [1500, 4000, 300],
      [0, 3000, 5000],
      [12345, 0, 10],
    ] as const) {
      const pieces = splitRange(off, len, chunk, max);
      let pos = off;
      for (const p of pieces) {
        expect(p.index * chunk + p.chunkOffset).toBe(pos);
        expect(p.at).toBe(pos - off);
        expect(p.chunkOffset + p.length).toBeLessThanOrEqual(chunk);
        expect(p.length).toBeLessThanOrEqual(max);
        expect(p.length).toBeGreaterThan(0);
        pos += p.length;
      }
      expect(pos).toBe(off + len);
    }
  });

  it('singlePiece is splitRange\'s piece when there is exactly one, and undefined otherwise', () => {
    const chunk = 1000;
    for (const [off, len, max] of [
      [0, 1, 64],
      [999, 1, 64],
      [999, 2, 64],
      [1000, 64, 64],
      [1000, 65, 64],
      [2500, 500, 1000],
    ] as const) {
      const pieces = splitRange(off, len, chunk, max);
      expect(singlePiece(off, len, chunk, max)).toEqual(pieces.length === 1 ? pieces[0] : undefined);
    }
  });
});
