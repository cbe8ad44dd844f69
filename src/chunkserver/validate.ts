// Validation of numbers that arrive on the wire, before anything (a path, a buffer) is built
// from them. Handles are positive safe integers; offsets, lengths and versions are >= 0.
import { GfsError } from '../common/errors.js';
import { MiB } from '../common/limits.js';

/** No chunk offset + length may pass this, whatever chunk size the master uses. */
export const MAX_CHUNK_BYTES = 1024 * MiB;

export function checkHandle(h: unknown): number {
  if (typeof h !== 'number' || !Number.isSafeInteger(h) || h <= 0) {
    throw new GfsError('EINVAL', `bad chunk handle ${JSON.stringify(h)}: must be a positive integer below 2^53`);
  }
  return h;
}

export function checkUint(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new GfsError('EINVAL', `bad ${what} ${JSON.stringify(v)}: must be a non-negative integer below 2^53`);
  }
  return v;
}

/** Checks offset and length of a chunk range (write or truncate) against MAX_CHUNK_BYTES. */
export function checkRange(handle: number, offset: unknown, length: unknown): void {
  const off = checkUint('offset', offset);
  const len = checkUint('length', length);
  if (off + len > MAX_CHUNK_BYTES) {
    throw new GfsError('EINVAL', `chunk ${handle}: range ${off}+${len} passes the chunk limit of ${MAX_CHUNK_BYTES} bytes`);
  }
}
