// What every data call of a chunkserver checks before it touches a chunk, whether it came over
// gRPC (service.ts) or the data channel (data-server.ts): the chunk access token (not on a
// secondary's apply: the primary checked it), the numbers of the request, and that a write
// carries exactly the bytes it announces.
import type { TokenVerifier } from '../common/chunk-token.js';
import { GfsError } from '../common/errors.js';
import { countBytes } from '../common/metrics.js';
import type { ReadRequest__Output } from '../generated/gfs/index.js';
import type { Admission } from './admission.js';
import type { ChunkStore } from './chunk-store.js';
import type { Slab } from '../common/slab-pool.js';
import { checkHandle, checkRange, checkUint } from './validate.js';

export interface AccessDeps {
  store: ChunkStore;
  admission: Admission;
  /** Checks chunk access tokens; undefined = not checked (--no-tokens). */
  tokens?: TokenVerifier;
}

export interface ChunkAccess {
  /** Token check of a data call (no-op without token checking). */
  allow(token: Buffer | undefined, need: 'read' | 'write', handle: unknown, version: unknown): void;
  /**
   * One read of at most `maxLength` bytes: checks, token, then a checksummed read in the read
   * pool (into memory from `lease` when given).
   */
  read(r: ReadRequest__Output, maxLength: number, lease?: (n: number) => Slab): Promise<Buffer>;
}

export function chunkAccess(deps: AccessDeps): ChunkAccess {
  const allow: ChunkAccess['allow'] = (token, need, handle, version) => {
    if (deps.tokens) deps.tokens.check(token, need, checkHandle(handle), checkUint('version', version));
  };
  return {
    allow,
    async read(r, maxLength, lease) {
      const handle = checkHandle(r.handle);
      const version = checkUint('version', r.version);
      allow(r.token, 'read', handle, version);
      const offset = checkUint('offset', r.offset);
      const length = checkUint('length', r.length);
      if (length > maxLength) throw new GfsError('EINVAL', `read of ${length} bytes: at most ${maxLength} in one call`);
      checkRange(handle, offset, 0);
      const data = await deps.admission.read(() => deps.store.read(handle, version, offset, length, lease));
      countBytes('read', data.length);
      return data;
    },
  };
}

export interface WriteFields {
  handle: number;
  version: number;
  offset: number;
  length: number;
}

/** Validated numbers of a write. */
export function checkWriteFields(req: { handle: unknown; version: unknown; offset: unknown; length: unknown }): WriteFields {
  const handle = checkHandle(req.handle);
  const version = checkUint('version', req.version);
  checkRange(handle, req.offset, req.length);
  return { handle, version, offset: req.offset as number, length: req.length as number };
}

/** A write carries exactly the bytes it announces. */
export function checkWriteData(w: WriteFields, data: Buffer): void {
  if (data.length !== w.length) throw new GfsError('EINVAL', `chunk ${w.handle}: write length ${w.length} but ${data.length} bytes of data`);
}
