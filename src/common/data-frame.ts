// Framing of the data channel (data-conn.ts, chunkserver/data-server.ts): chunk bytes between
// clients and chunkservers, and between chunkservers, over plain TCP (or TLS) instead of gRPC,
// whose HTTP/2 and protobuf layers cost several times the CPU per byte and per call on this
// path (shared/bench/LIMITS.md). The control plane stays gRPC.
//
// A frame (integers big-endian):
//   u32 length of what follows | u8 kind | u32 id | u32 header length | header | payload
// The header is a protobuf message of the kind (data-codec.ts); the payload is raw bytes (the
// data of a write, the bytes a read returns). A request carries an id chosen by the caller;
// its reply (Ok or Err) carries the same id. The first frame of a connection is a Hello.
import { GfsError } from './errors.js';
import { KiB, MiB } from './limits.js';

export const DATA_MAGIC = 0x47465344; // "GFSD"
export const DATA_PROTOCOL_VERSION = 1;
/** u32 length | u8 kind | u32 id | u32 header length. */
export const FRAME_PREFIX_BYTES = 13;
/** A header is a small message; anything longer is a broken or hostile peer. */
export const MAX_HEADER_BYTES = 64 * KiB;
/** Largest payload of one frame (a write piece or a read reply). */
export const MAX_PAYLOAD_BYTES = 64 * MiB;

export const Kind = {
  Hello: 1,
  Read: 2,
  Write: 3,
  Apply: 4,
  Sync: 5,
  /** A unary call of a session (session-listener.ts): header = method name, payload = request. */
  Call: 6,
  Ok: 64,
  Err: 65,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export interface Frame {
  kind: number;
  id: number;
  header: Buffer;
  payload: Buffer;
  /** Gives back the payload's memory when it came from a pool (see FrameSinks); else a no-op. */
  release(): void;
}

/** The bytes before a frame's payload: prefix and header. */
export function framePrefix(kind: Kind, id: number, header: Uint8Array, payloadBytes: number): Buffer {
  if (header.length > MAX_HEADER_BYTES) throw new GfsError('E2BIG', `frame header of ${header.length} bytes`);
  if (payloadBytes > MAX_PAYLOAD_BYTES) throw new GfsError('E2BIG', `frame payload of ${payloadBytes} bytes`);
  const out = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + header.length);
  out.writeUInt32BE(FRAME_PREFIX_BYTES - 4 + header.length + payloadBytes, 0);
  out.writeUInt8(kind, 4);
  out.writeUInt32BE(id >>> 0, 5);
  out.writeUInt32BE(header.length, 9);
  out.set(header, FRAME_PREFIX_BYTES);
  return out;
}

/**
 * Where the payload of a frame that spans socket pieces goes, decided once its prefix and
 * header are in: straight into a buffer the receiver names (a read into its caller's buffer),
 * or a pooled one. Undefined: a fresh buffer.
 */
export interface FrameSinks {
  sink?(kind: number, id: number, header: Buffer, bytes: number): { buf: Buffer; release(): void } | undefined;
}

const NOOP = () => undefined;

/**
 * Cuts a byte stream into frames. Bytes arrive in socket-sized pieces: a frame inside one
 * piece is handed on as views of it; a payload that spans pieces is copied once, into the
 * buffer FrameSinks names. Throws EINVAL on a frame that breaks the bounds, after which the
 * connection must be closed.
 *
 * `transient`: each piece is valid only during push() (a socket reading into one reused
 * buffer, framed-socket.ts). A frame inside one piece is then copied too: its payload into
 * its sink when it has one, else into a buffer of its own.
 */
export class FrameReader {
  /** Bytes of a prefix or header that arrived split across pieces. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The frame whose payload is being filled. */
  private cur: { kind: number; id: number; header: Buffer; payload: Buffer; release: () => void; filled: number } | undefined;

  constructor(
    private readonly onFrame: (f: Frame) => void,
    private readonly sinks: FrameSinks = {},
    private readonly transient = false,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0) {
      const cur = this.cur;
      if (cur) {
        const n = Math.min(buf.length, cur.payload.length - cur.filled);
        // set(), not copy(): Buffer.copy validates and wraps its arguments on every call, which
        // cost more than the bytes with thousands of small replies arriving split.
        cur.payload.set(n === buf.length ? buf : buf.subarray(0, n), cur.filled);
        cur.filled += n;
        buf = buf.subarray(n);
        if (cur.filled === cur.payload.length) {
          this.cur = undefined;
          this.onFrame({ kind: cur.kind, id: cur.id, header: cur.header, payload: cur.payload, release: cur.release });
        }
        continue;
      }
      if (this.partialBytes > 0) {
        this.partial.push(buf);
        buf = Buffer.concat(this.partial, this.partialBytes + buf.length);
        this.partial = [];
        this.partialBytes = 0;
      }
      if (buf.length < FRAME_PREFIX_BYTES) return this.keep(buf);
      const total = 4 + buf.readUInt32BE(0);
      const hlen = buf.readUInt32BE(9);
      if (total < FRAME_PREFIX_BYTES || hlen > MAX_HEADER_BYTES || FRAME_PREFIX_BYTES + hlen > total || total - FRAME_PREFIX_BYTES - hlen > MAX_PAYLOAD_BYTES) {
        throw new GfsError('EINVAL', `data channel: frame of ${total} bytes with a header of ${hlen} is out of bounds`);
      }
      const kind = buf.readUInt8(4);
      const id = buf.readUInt32BE(5);
      if (buf.length >= total) {
        const header = buf.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + hlen);
        const payload = buf.subarray(FRAME_PREFIX_BYTES + hlen, total);
        buf = buf.subarray(total);
        // The whole frame is in this piece: views, no copy, unless the piece is reused.
        if (!this.transient) this.onFrame({ kind, id, header, payload, release: NOOP });
        else {
          const own = Buffer.from(header);
          const to = this.target(kind, id, own, payload.length);
          to.buf.set(payload);
          this.onFrame({ kind, id, header: own, payload: to.buf, release: to.release });
        }
        continue;
      }
      if (buf.length < FRAME_PREFIX_BYTES + hlen) return this.keep(buf);
      // The payload spans pieces: it goes to its sink, or a buffer of its own.
      const header = Buffer.from(buf.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + hlen));
      const to = this.target(kind, id, header, total - FRAME_PREFIX_BYTES - hlen);
      const got = buf.length - FRAME_PREFIX_BYTES - hlen;
      to.buf.set(buf.subarray(FRAME_PREFIX_BYTES + hlen));
      this.cur = { kind, id, header, payload: to.buf, release: to.release, filled: got };
      return;
    }
  }

  /** Where a payload of `bytes` that is copied goes: the buffer its sink names, or a new one. */
  private target(kind: number, id: number, header: Buffer, bytes: number): { buf: Buffer; release: () => void } {
    const to = this.sinks.sink?.(kind, id, header, bytes);
    if (!to) return { buf: Buffer.allocUnsafe(bytes), release: NOOP };
    if (to.buf.length !== bytes) throw new GfsError('EIO', `data channel: sink of ${to.buf.length} bytes for a payload of ${bytes}`);
    return to;
  }

  /** Frees the payload buffer of a frame cut off by a broken connection. */
  abandon(): void {
    this.cur?.release();
    this.cur = undefined;
  }

  private keep(buf: Buffer): void {
    // Copied: the socket's piece may be reused once this call returns.
    this.partial.push(Buffer.from(buf));
    this.partialBytes += buf.length;
  }
}
