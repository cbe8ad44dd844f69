// The chunkserver's side of the data channel (common/data-frame.ts): reads, writes at the
// primary, applies at secondaries and syncs, over plain TCP (or TLS) on a port of its own.
// Every connection starts with a Hello proving the cluster credential; Apply is for servers
// only. Each request gets the checks of its gRPC twin (chunk-access.ts: numbers, token; an
// Apply's token is the primary's to check).
//
// Writes are pipelined: the primary numbers a write, queues it on its own disk and sends it to
// each secondary on that secondary's single ordered connection, without waiting for earlier
// writes of the chunk to finish; every replica therefore applies a chunk's writes in the same
// order. A write is answered when every replica applied it; any failure fails the write and the
// client retries it (the region may be inconsistent in between, as GFS documents).
//
// Bounds: requests in flight per connection, bytes of write payloads held, and replies queued
// on a slow reader (reading from it pauses until they drain).
import net from 'node:net';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { proveRole, type Role, type TlsFiles } from '../common/auth.js';
import type { TokenVerifier } from '../common/chunk-token.js';
import type { ClusterKeys } from '../common/cluster-secret.js';
import { applyCodec, errorCodec, helloCodec, okCodec, readCodec, syncCodec, writeCodec } from '../common/data-codec.js';
import type { DataConnPool } from '../common/data-conn.js';
import { DATA_PROTOCOL_VERSION, FrameReader, Kind, MAX_PAYLOAD_BYTES, type Frame } from '../common/data-frame.js';
import { FrameWriter } from '../common/frame-writer.js';
import { listenFramed, type FramedListener, type PieceHandler } from '../common/framed-socket.js';
import { GfsError } from '../common/errors.js';
import { MiB } from '../common/limits.js';
import type { Logger } from '../common/logger.js';
import { countBytes, serverRpcStarted } from '../common/metrics.js';
import type { Admission } from './admission.js';
import { chunkAccess, checkWriteData, checkWriteFields } from './chunk-access.js';
import type { ChunkStore } from './chunk-store.js';
import { checkPeers } from './peers.js';
import { checkHandle, checkUint } from './validate.js';
import type { WriteOrder } from './write-order.js';
import { SlabPool, type Slab } from '../common/slab-pool.js';

/** Requests one connection may have in flight; more are refused with EAGAIN. */
export const DATA_INFLIGHT_PER_CONN = 1024;
/** Write payload bytes held by this server at once (received, not yet applied everywhere). */
export const DATA_WRITE_BYTES_MAX = 512 * MiB;
/** Reply bytes queued for one connection before reading from it pauses. */
export const DATA_SEND_HIGH_WATER = 64 * MiB;
/** Bound on one Apply forwarded by the primary to a secondary. */
export const APPLY_TIMEOUT_MS = 15_000;
/** Recycled payload and read buffers kept when idle (fresh memory faults on first touch). */
export const DATA_POOL_IDLE_BYTES = 128 * MiB;

export interface DataServerDeps {
  store: ChunkStore;
  order: WriteOrder;
  admission: Admission;
  /** Data connections to peers (this server's credential), for Apply. */
  peers: DataConnPool;
  /** This server's data address (secondaries naming it are refused). */
  self: () => string;
  serverId: () => string;
  /** undefined: no credential is checked (in-process tests of old). */
  keys: ClusterKeys | undefined;
  tokens?: TokenVerifier;
  tls?: TlsFiles;
  log: Logger;
}

export type DataServer = FramedListener;

const KIND_NAMES: Record<number, string> = { [Kind.Read]: 'data.Read', [Kind.Write]: 'data.Write', [Kind.Apply]: 'data.Apply', [Kind.Sync]: 'data.Sync' };
const EMPTY = new Uint8Array(0);

type Reply = { header: Uint8Array; payload?: Buffer; release?: () => void };

export async function startDataServer(deps: DataServerDeps, host: string, port: number): Promise<DataServer> {
  const { store, order, admission, log } = deps;
  const access = chunkAccess(deps);
  let heldWriteBytes = 0;
  const pool = new SlabPool(DATA_POOL_IDLE_BYTES);

  const hold = (n: number) => {
    if (heldWriteBytes + n > DATA_WRITE_BYTES_MAX) {
      throw new GfsError('EAGAIN', `chunkserver busy: ${heldWriteBytes} bytes of writes held, at most ${DATA_WRITE_BYTES_MAX}`, GrpcStatus.RESOURCE_EXHAUSTED);
    }
    heldWriteBytes += n;
    let released = false;
    return () => {
      if (!released) heldWriteBytes -= n;
      released = true;
    };
  };

  const localWrite = (handle: number, version: number, offset: number, data: Buffer, sync: boolean) =>
    admission.write(() => store.write(handle, version, offset, data, { create: true, sync }));

  async function read(f: Frame): Promise<Reply> {
    let slab: Slab | undefined;
    const lease = (n: number) => (slab = pool.lease(n));
    try {
      const data = await access.read(readCodec.decode(f.header), MAX_PAYLOAD_BYTES, lease);
      return { header: EMPTY, payload: data, release: slab?.release };
    } catch (err) {
      slab?.release();
      throw err;
    }
  }

  /** A write's payload goes back to the pool only once every forward of it has been sent. */
  async function write(f: Frame): Promise<Reply> {
    const sends: Array<Promise<void>> = [];
    try {
      return await primaryWrite(f, sends);
    } finally {
      await Promise.all(sends);
    }
  }

  async function primaryWrite(f: Frame, sends: Array<Promise<void>>): Promise<Reply> {
    const req = writeCodec.decode(f.header);
    access.allow(req.token, 'write', req.handle, req.version);
    const w = checkWriteFields(req);
    checkWriteData(w, f.payload);
    const secondaries = checkPeers(`chunk ${w.handle}: secondaries`, req.secondaries ?? [], deps.self());
    const release = hold(f.payload.length);
    try {
      // Numbered and handed to the disk queue and to every secondary's ordered connection in
      // this same turn: the order of frames on the wire is the order of application.
      const serial = order.next(w.handle);
      const apply = applyCodec.encode({ handle: w.handle, version: w.version, offset: w.offset, length: w.length, serial, sync: req.sync, token: req.token });
      const remote = secondaries.map((addr) => {
        let sent!: () => void;
        sends.push(new Promise<void>((r) => (sent = r)));
        return deps.peers.request(addr, Kind.Apply, apply, f.payload, APPLY_TIMEOUT_MS, `chunk ${w.handle}: apply at secondary ${addr}`, undefined, sent);
      });
      const local = localWrite(w.handle, w.version, w.offset, f.payload, req.sync);
      const [l, ...r] = await Promise.allSettled([local, ...remote]);
      const failed = [l, ...r].find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) {
        if (l.status === 'fulfilled') log.warn({ handle: w.handle, err: (failed.reason as Error).message }, 'write not applied at every replica');
        throw failed.reason;
      }
      countBytes('written', w.length);
      return { header: okCodec.encode({ serial, chunkLength: (l as PromiseFulfilledResult<number>).value }) };
    } finally {
      release();
    }
  }

  async function apply(f: Frame, role: Role): Promise<Reply> {
    if (role !== 'server') throw new GfsError('EACCES', 'chunkserver Apply: only the master and chunkservers may call this', GrpcStatus.PERMISSION_DENIED);
    // The primary checked the client's token. A caller holding the cluster credential holds
    // the token key as well, so checking it again here would prove nothing (it cost ~40 us per
    // small write at each secondary during tar -x). The primary still forwards the token, for
    // secondaries of older versions, which check it.
    const req = applyCodec.decode(f.header);
    const w = checkWriteFields(req);
    checkWriteData(w, f.payload);
    const serial = checkUint('serial', req.serial);
    const release = hold(f.payload.length);
    try {
      const chunkLength = await localWrite(w.handle, w.version, w.offset, f.payload, req.sync);
      countBytes('written', w.length);
      return { header: okCodec.encode({ serial, chunkLength }) };
    } finally {
      release();
    }
  }

  async function sync(f: Frame): Promise<Reply> {
    const req = syncCodec.decode(f.header);
    access.allow(req.token, 'read', req.handle, req.version);
    await store.sync(checkHandle(req.handle), checkUint('version', req.version));
    return { header: EMPTY };
  }

  function dispatch(f: Frame, role: Role): Promise<Reply> {
    switch (f.kind) {
      case Kind.Read:
        return read(f);
      case Kind.Write:
        return write(f);
      case Kind.Apply:
        return apply(f, role);
      case Kind.Sync:
        return sync(f);
      default:
        return Promise.reject(new GfsError('EINVAL', `data channel: unknown request kind ${f.kind}`));
    }
  }

  function serve(socket: net.Socket): PieceHandler {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    let role: Role | undefined;
    let inflight = 0;
    let closed = false;
    const writer = new FrameWriter(socket);

    /** `sent`: called once the payload has been handed to the kernel (or the socket is gone). */
    const send = (kind: Kind, id: number, header: Uint8Array, payload?: Buffer, sent?: () => void) => {
      if (closed) return sent?.();
      writer.write(kind, id, header, payload, sent);
      if (socket.writableLength > DATA_SEND_HIGH_WATER && !socket.isPaused()) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    };
    const fail = (id: number, err: unknown) => {
      const e = err instanceof GfsError ? err : new GfsError('EIO', `data channel: internal error: ${(err as Error)?.message ?? String(err)}`);
      if (e.code === 'EIO') log.warn({ peer, err: e.message }, 'data request failed');
      send(Kind.Err, id, errorCodec.encode({ code: e.grpcCode, errno: e.code, message: e.message }));
    };

    const hello = (f: Frame) => {
      try {
        if (f.kind !== Kind.Hello) throw new GfsError('EINVAL', 'data channel: the first frame must be a Hello');
        const h = helloCodec.decode(f.header);
        if (h.version !== DATA_PROTOCOL_VERSION) throw new GfsError('EINVAL', `data channel: protocol version ${h.version}, this server speaks ${DATA_PROTOCOL_VERSION}`);
        const r = deps.keys ? proveRole(h.auth, deps.keys, 'chunkserver data channel') : 'server';
        if (r instanceof GfsError) throw r;
        role = r;
        send(Kind.Ok, f.id, okCodec.encode({ serverId: deps.serverId() }));
      } catch (err) {
        fail(f.id, err);
        socket.end();
        closed = true;
      }
    };

    const reader = new FrameReader((f) => {
      if (closed) return f.release();
      if (!role) return hello(f);
      if (inflight >= DATA_INFLIGHT_PER_CONN) {
        f.release();
        return fail(f.id, new GfsError('EAGAIN', `${inflight} data requests in flight on this connection, at most ${DATA_INFLIGHT_PER_CONN}`, GrpcStatus.RESOURCE_EXHAUSTED));
      }
      inflight++;
      const done = serverRpcStarted(KIND_NAMES[f.kind] ?? 'data.Unknown');
      let p: Promise<Reply>;
      try {
        p = dispatch(f, role);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (r) => {
          done(false);
          send(Kind.Ok, f.id, r.header, r.payload, r.release);
        },
        (err) => {
          done(true);
          fail(f.id, err);
        },
      ).finally(() => {
        inflight--;
        f.release(); // a write's payload is applied (and forwarded) by now
      });
    }, {
      // A write's payload is received into recycled memory.
      sink: (kind, _id, _header, bytes) => (kind === Kind.Write || kind === Kind.Apply ? pool.lease(bytes) : undefined),
    }, true);

    socket.on('error', (err) => log.debug({ peer, err: err.message }, 'data connection error'));
    socket.on('close', () => {
      closed = true;
      reader.abandon();
    });
    return (piece: Buffer) => {
      try {
        reader.push(piece);
      } catch (err) {
        log.debug({ peer, err: (err as Error).message }, 'data channel: bad frame; closing');
        closed = true;
        socket.destroy();
      }
    };
  }

  return listenFramed(host, port, deps.tls, 'data channel', serve);
}
