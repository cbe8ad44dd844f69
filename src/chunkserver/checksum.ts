// Per-block CRC32 checksums of chunk data (common/crc32.ts, one value per CHECKSUM_BLOCK bytes).
// A chunk whose length ends mid-block checksums just the bytes present in its last block.
import { crc32 } from '../common/crc32.js';
import { CHECKSUM_BLOCK } from '../common/limits.js';

export const BLOCK = CHECKSUM_BLOCK;

export function crcOf(buf: Uint8Array): number {
  return crc32(buf);
}

/** Number of checksum blocks a chunk of `length` bytes has. */
export function blockCount(length: number): number {
  return Math.ceil(length / BLOCK);
}

/** Byte range [start, end) of block `b` in a chunk of `length` bytes. */
export function blockRange(b: number, length: number): [number, number] {
  const start = b * BLOCK;
  return [start, Math.min(start + BLOCK, length)];
}

const zeroCrcs = new Map<number, number>();

/** CRC of `n` zero bytes (cached: gaps and grown regions are all zeros). */
export function zeroCrc(n: number): number {
  let c = zeroCrcs.get(n);
  if (c === undefined) {
    c = crcOf(Buffer.alloc(n));
    if (zeroCrcs.size < 64) zeroCrcs.set(n, c);
  }
  return c;
}

/**
 * Verifies the blocks of `buf`, which holds chunk bytes starting at block `firstBlock` (so
 * `buf` begins on a block boundary), against checksums of `block` bytes each. Returns the index
 * of the first bad block, or -1.
 */
export function firstBadBlock(buf: Uint8Array, firstBlock: number, crcs: Uint32Array, block = BLOCK): number {
  for (let off = 0, b = firstBlock; off < buf.length; off += block, b++) {
    const piece = buf.subarray(off, Math.min(off + block, buf.length));
    if (b >= crcs.length || crcOf(piece) !== crcs[b]) return b;
  }
  return -1;
}

/** Writes the checksums of `buf` (chunk bytes from block `firstBlock` on) into `out`. */
export function blockCrcsInto(buf: Uint8Array, firstBlock: number, out: Uint32Array): void {
  for (let off = 0, b = firstBlock; off < buf.length; off += BLOCK, b++) out[b] = crcOf(buf.subarray(off, Math.min(off + BLOCK, buf.length)));
}

/** Per-block checksums of bytes that arrive in pieces of any size, in order from offset 0. */
export class RunningBlockCrcs {
  private readonly done: number[] = [];
  private cur = 0;
  private curLen = 0;
  private total = 0;

  update(data: Uint8Array): void {
    for (let off = 0; off < data.length; ) {
      const n = Math.min(BLOCK - this.curLen, data.length - off);
      this.cur = crc32(data.subarray(off, off + n), this.cur);
      this.curLen += n;
      off += n;
      if (this.curLen === BLOCK) {
        this.done.push(this.cur);
        this.cur = 0;
        this.curLen = 0;
      }
    }
    this.total += data.length;
  }

  /** Bytes seen so far. */
  get length(): number {
    return this.total;
  }

  /** The checksums of every block, the last one possibly partial. */
  finish(): Uint32Array {
    const out = new Uint32Array(blockCount(this.total));
    out.set(this.done);
    if (this.curLen > 0) out[this.done.length] = this.cur;
    return out;
  }
}
