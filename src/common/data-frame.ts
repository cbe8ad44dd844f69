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
  Ok: 64,
  Err: 65,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export interface Frame {
  kind: number;
  id: number;
  header: Buffer;
  payload: Buffer;
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
 * Cuts a byte stream into frames. Bytes arrive in socket-sized pieces; a frame that spans
 * pieces is copied once into a buffer of its own size. Throws EPROTO-like GfsErrors (EINVAL)
 * on a frame that breaks the bounds, after which the connection must be closed.
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The frame being filled, once its length is known and it spans pieces. */
  private target: Buffer | undefined;
  private filled = 0;

  constructor(private readonly onFrame: (f: Frame) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0) {
      if (this.target) {
        const n = Math.min(buf.length, this.target.length - this.filled);
        buf.copy(this.target, this.filled, 0, n);
        this.filled += n;
        buf = buf.subarray(n);
        if (this.filled === this.target.length) {
          const whole = this.target;
          this.target = undefined;
          this.emit(whole);
        }
        continue;
      }
      if (this.pendingBytes > 0) {
        // A few bytes of a prefix are waiting: join them with this piece and start over.
        this.pending.push(buf);
        buf = Buffer.concat(this.pending, this.pendingBytes + buf.length);
        this.pending = [];
        this.pendingBytes = 0;
      }
      if (buf.length < 4) {
        this.pending.push(buf);
        this.pendingBytes = buf.length;
        return;
      }
      const total = 4 + buf.readUInt32BE(0);
      if (total < FRAME_PREFIX_BYTES || total > FRAME_PREFIX_BYTES + MAX_HEADER_BYTES + MAX_PAYLOAD_BYTES) {
        throw new GfsError('EINVAL', `data channel: frame of ${total} bytes is out of bounds`);
      }
      if (buf.length >= total) {
        this.emit(buf.subarray(0, total));
        buf = buf.subarray(total);
        continue;
      }
      this.target = Buffer.allocUnsafe(total);
      buf.copy(this.target, 0);
      this.filled = buf.length;
      return;
    }
  }

  private emit(whole: Buffer): void {
    const kind = whole.readUInt8(4);
    const id = whole.readUInt32BE(5);
    const hlen = whole.readUInt32BE(9);
    if (hlen > MAX_HEADER_BYTES || FRAME_PREFIX_BYTES + hlen > whole.length) {
      throw new GfsError('EINVAL', `data channel: header of ${hlen} bytes in a frame of ${whole.length}`);
    }
    this.onFrame({
      kind,
      id,
      header: whole.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + hlen),
      payload: whole.subarray(FRAME_PREFIX_BYTES + hlen),
    });
  }
}
