// The one CRC-32 of every on-disk format (chunk blocks and meta, oplog, checkpoints) must stay
// zlib's: data written before @node-rs/crc32 replaced zlib.crc32 is checked with it.
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/common/crc32.js';

const zlibCrc = (zlib as unknown as { crc32: (data: Uint8Array, value?: number) => number }).crc32;

describe('crc32', () => {
  it('is CRC-32/IEEE: the standard check value, and zlib\'s values, continued ones included', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
    const data = randomBytes(70_000);
    for (const n of [1, 7, 4096, 65_536, 70_000]) expect(crc32(data.subarray(0, n))).toBe(zlibCrc(data.subarray(0, n)) >>> 0);
    // Continued over pieces, through views at odd offsets of a plain Uint8Array.
    const view = new Uint8Array(data.buffer, data.byteOffset + 3, 60_000);
    let c = 0;
    for (let at = 0; at < view.length; at += 4099) c = crc32(view.subarray(at, at + 4099), c);
    expect(c).toBe(zlibCrc(view) >>> 0);
    expect(c).toBe(crc32(view));
  });
});
