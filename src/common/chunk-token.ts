// Chunk access tokens: short-lived capabilities the master hands out with chunk locations and
// chunkservers check on every data call, without asking the master (they hold the cluster
// secret the token key derives from; clients do not, so they cannot forge one).
//
// Wire format (58 bytes):
//   [0]      format, 1
//   [1]      mode: 1 = read, 2 = write (a write token also allows reads)
//   [2..10)  chunk handle, uint64 big-endian
//   [10..18) chunk version, uint64 big-endian
//   [18..26) expiry, wall-clock ms since the epoch, uint64 big-endian
//   [26..58) HMAC-SHA256(tokenKey, bytes [0..26))
import { createHmac, timingSafeEqual } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { GfsError } from './errors.js';

export const TOKEN_FORMAT = 1;
export const TOKEN_BYTES = 58;
const BODY = 26;
/** Lifetime of a token. Clients re-ask for locations well before (location TTL 30 s). */
export const TOKEN_TTL_MS = 120_000;
/** Clock difference between master and chunkserver a token tolerates. */
export const TOKEN_SKEW_MS = 5_000;

export type TokenMode = 'read' | 'write';

export interface TokenClaims {
  mode: TokenMode;
  handle: number;
  version: number;
  expiryMs: number;
}

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest();
}

export function signToken(key: Buffer, c: TokenClaims): Buffer {
  const t = Buffer.allocUnsafe(TOKEN_BYTES);
  t[0] = TOKEN_FORMAT;
  t[1] = c.mode === 'write' ? 2 : 1;
  t.writeBigUInt64BE(BigInt(c.handle), 2);
  t.writeBigUInt64BE(BigInt(c.version), 10);
  t.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(c.expiryMs))), 18);
  mac(key, t.subarray(0, BODY)).copy(t, BODY);
  return t;
}

/** Decodes a token whose signature is valid; undefined when it is malformed or forged. */
export function openToken(key: Buffer, token: Buffer | Uint8Array | undefined | null): TokenClaims | undefined {
  if (!token || token.length !== TOKEN_BYTES) return undefined;
  const t = Buffer.isBuffer(token) ? token : Buffer.from(token);
  if (t[0] !== TOKEN_FORMAT || (t[1] !== 1 && t[1] !== 2)) return undefined;
  if (!timingSafeEqual(mac(key, t.subarray(0, BODY)), t.subarray(BODY))) return undefined;
  return {
    mode: t[1] === 2 ? 'write' : 'read',
    handle: Number(t.readBigUInt64BE(2)),
    version: Number(t.readBigUInt64BE(10)),
    expiryMs: Number(t.readBigUInt64BE(18)),
  };
}

/** Verified tokens remembered by a chunkserver. */
export const VERIFIED_CACHE_MAX = 16_384;

const denied = (msg: string) => new GfsError('EACCES', msg, GrpcStatus.PERMISSION_DENIED);

/** Issues tokens (master). */
export class TokenSigner {
  constructor(private readonly key: Buffer, private readonly ttlMs = TOKEN_TTL_MS) {}

  /** `ttlMs`: longer for work that may wait long (a queued clone). */
  sign(mode: TokenMode, handle: number, version: number, ttlMs = this.ttlMs, now = Date.now()): Buffer {
    return signToken(this.key, { mode, handle, version, expiryMs: now + ttlMs });
  }
}

/**
 * Checks tokens (chunkserver). `need` = 'read' accepts read and write tokens; 'write' only
 * write tokens. An expired token is ESTALE: the client's locations are old, it asks the master
 * again (the read and write paths retry ESTALE with fresh locations). Anything else is EACCES.
 */
export class TokenVerifier {
  /**
   * Tokens whose signature was checked recently (the same token serves every read of a chunk
   * for up to a minute or two): a hit costs a map lookup instead of an HMAC. Keyed by all 58
   * bytes, MAC included, so only byte-identical tokens hit. Cleared when full.
   */
  private readonly verified = new Map<string, TokenClaims>();

  constructor(private readonly key: Buffer, private readonly cacheMax = VERIFIED_CACHE_MAX) {}

  check(token: Buffer | Uint8Array | undefined | null, need: TokenMode, handle: number, version?: number, now = Date.now()): TokenClaims {
    if (!token || token.length === 0) throw denied(`chunk ${handle}: no access token (ask the master for the chunk's locations)`);
    const k = token.length === TOKEN_BYTES ? Buffer.from(token.buffer, token.byteOffset, token.length).toString('latin1') : '';
    let c = k ? this.verified.get(k) : undefined;
    if (!c) {
      c = openToken(this.key, token);
      if (c && this.cacheMax > 0) {
        if (this.verified.size >= this.cacheMax) this.verified.clear();
        this.verified.set(k, c);
      }
    }
    if (!c) throw denied(`chunk ${handle}: invalid access token`);
    if (c.handle !== handle) throw denied(`chunk ${handle}: access token is for chunk ${c.handle}`);
    if (need === 'write' && c.mode !== 'write') throw denied(`chunk ${handle}: read-only access token used for a write`);
    if (version !== undefined && c.version !== version) {
      throw denied(`chunk ${handle}: access token is for version ${c.version}, request names ${version}`);
    }
    if (c.expiryMs + TOKEN_SKEW_MS < now) throw new GfsError('ESTALE', `chunk ${handle}: access token expired`);
    return c;
  }
}
