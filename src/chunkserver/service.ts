// The ChunkServer gRPC service: ordered writes at the primary (apply locally, then forward to
// every secondary under the chunk's turn), applies at secondaries, streamed verified reads,
// and the master's chunk administration (delete, set version, truncate, sync, status, clone).
// Reads marked background (PRIORITY_METADATA_KEY, sent by a cloning peer) use the background
// pool, so re-replication never takes read slots from clients.
import * as grpc from '@grpc/grpc-js';
import type { TokenVerifier } from '../common/chunk-token.js';
import { GfsError } from '../common/errors.js';
import { CHECKSUM_BLOCK, READ_BATCH_BYTES, READ_BATCH_MAX, STREAM_PIECE } from '../common/limits.js';
import type { Logger } from '../common/logger.js';
import { countBytes, serverRpcStarted } from '../common/metrics.js';
import { callUnary, requestFields, toServiceError, unaryHandler, type ClientPool } from '../common/rpc.js';
import type { ChunkServerClient, ChunkServerHandlers } from '../generated/gfs/ChunkServer.js';
import type {
  ApplyWriteRequest__Output,
  CloneRequest__Output,
  Empty,
  ReadBatchReply,
  ReadBatchRequest__Output,
  ReadReply,
  ReadRequest__Output,
  WriteReply,
  WriteRequest__Output,
} from '../generated/gfs/index.js';
import { PRIORITY_BACKGROUND, PRIORITY_METADATA_KEY, type Admission } from './admission.js';
import type { ChunkStore } from './chunk-store.js';
import type { Cloner } from './cloner.js';
import { checkPeers } from './peers.js';
import { pushDataHandler } from './pipeline.js';
import { PushBuffers } from './push-buffers.js';
import { chunkAccess, checkWriteData, checkWriteFields } from './chunk-access.js';
import { checkHandle, checkRange, checkUint, MAX_CHUNK_BYTES } from './validate.js';
import type { WriteOrder } from './write-order.js';

/** Bound on one ApplyWrite forwarded by the primary to a secondary. */
export const WRITE_FORWARD_TIMEOUT_MS = 15_000;

export interface ServiceDeps {
  store: ChunkStore;
  buffers: PushBuffers;
  order: WriteOrder;
  admission: Admission;
  peers: ClientPool<ChunkServerClient>;
  cloner: Cloner;
  /** Address this server is known by (to refuse chains and secondaries that loop back). */
  self: () => string;
  serverId: () => string;
  capacity: () => Promise<number>;
  log: Logger;
  /** Checks chunk access tokens (src/common/chunk-token.ts); undefined = not checked (--no-tokens). */
  tokens?: TokenVerifier;
}

type WriteLike = Pick<WriteRequest__Output, 'handle' | 'version' | 'offset' | 'length' | 'dataId' | 'data'>;

/** Validated numbers of a write plus its bytes (inline, or from a push buffer). */
function resolveWrite(deps: ServiceDeps, req: WriteLike): { handle: number; data: Buffer; dataId: string } {
  const w = checkWriteFields(req);
  const handle = w.handle;
  let data: Buffer;
  let dataId = '';
  if (req.data && req.data.length > 0) {
    data = req.data;
  } else if (req.dataId) {
    dataId = PushBuffers.checkId(req.dataId);
    const got = deps.buffers.get(dataId);
    if (!got) throw new GfsError('EAGAIN', `push data ${dataId} not found on this server (expired or never pushed)`);
    // A push is bound to the chunk its token named: its bytes go nowhere else.
    const pushedFor = deps.buffers.handleOf(dataId);
    if (deps.tokens && pushedFor !== handle) {
      throw new GfsError('EACCES', `push data ${dataId} was pushed for chunk ${pushedFor ?? 'unknown'}, not chunk ${req.handle}`);
    }
    data = got;
  } else {
    data = Buffer.alloc(0);
  }
  checkWriteData(w, data);
  return { handle, data, dataId };
}

function waitWritable(call: grpc.ServerWritableStream<ReadRequest__Output, ReadReply>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    call.on('close', done);
  });
}

export function chunkServerHandlers(deps: ServiceDeps): ChunkServerHandlers {
  const { store, order, admission, log } = deps;
  const { allow, read: readOne } = chunkAccess(deps);

  async function forward(req: WriteRequest__Output, handle: number, serial: number, dataId: string): Promise<void> {
    const results = await Promise.allSettled(
      req.secondaries.map((addr) =>
        callUnary(
          deps.peers.get(addr),
          deps.peers.get(addr).ApplyWrite,
          {
            handle,
            version: req.version,
            offset: req.offset,
            length: req.length,
            ...(dataId ? { dataId } : { data: req.data }),
            serial,
            sync: req.sync,
            token: req.token,
          },
          WRITE_FORWARD_TIMEOUT_MS,
          `chunk ${handle}: ApplyWrite at secondary ${addr}`,
        ),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      log.warn({ handle, err: (failed.reason as Error).message }, 'write not applied at every replica');
      throw failed.reason;
    }
  }

  return {
    PushData: pushDataHandler(deps),

    Write: unaryHandler<WriteRequest__Output, WriteReply>(log, 'Write', (req) =>
      admission.track(async () => {
        allow(req.token, 'write', req.handle, req.version);
        const { handle, data, dataId } = resolveWrite(deps, req);
        checkPeers(`chunk ${handle}: secondaries`, req.secondaries ?? [], deps.self());
        const reply = await order.primary(handle, async (serial) => {
          // The local apply and the forwarding run at once: the serial order is kept by the
          // chunk's turn (held until every replica answered), and a small write then costs one
          // disk write of latency instead of two in a row.
          const [local, remote] = await Promise.allSettled([
            admission.write(() => store.write(handle, req.version, req.offset, data, { create: true, sync: req.sync })),
            forward(req, handle, serial, dataId),
          ]);
          if (local.status === 'rejected') throw local.reason;
          if (remote.status === 'rejected') throw remote.reason;
          return { serial, chunkLength: local.value };
        });
        if (dataId) deps.buffers.drop(dataId);
        countBytes('written', data.length);
        return reply;
      }),
    ),

    ApplyWrite: unaryHandler<ApplyWriteRequest__Output, WriteReply>(log, 'ApplyWrite', (req) =>
      admission.track(async () => {
        // Server-only (SERVER_ONLY): the primary checked the client's token (data-server.ts apply).
        const { handle, data, dataId } = resolveWrite(deps, req);
        const serial = checkUint('serial', req.serial);
        const chunkLength = await order.secondary(handle, serial, () =>
          admission.write(() => store.write(handle, req.version, req.offset, data, { create: true, sync: req.sync })),
        );
        if (dataId) deps.buffers.drop(dataId);
        countBytes('written', data.length);
        return { serial, chunkLength };
      }),
    ),

    Read: (call) => {
      const leave = admission.enter();
      const done = serverRpcStarted('Read');
      const t0 = performance.now();
      let failed = false;
      const req = call.request;
      const background = call.metadata.get(PRIORITY_METADATA_KEY)[0] === PRIORITY_BACKGROUND;
      const pool = <T>(fn: () => Promise<T>) => (background ? admission.background(fn) : admission.read(fn));
      (async () => {
        const handle = checkHandle(req.handle);
        const version = checkUint('version', req.version);
        allow(req.token, 'read', handle, version);
        const offset = checkUint('offset', req.offset);
        const length = checkUint('length', req.length);
        checkRange(handle, offset, 0);
        const end = offset + Math.min(length, MAX_CHUNK_BYTES); // no chunk is longer
        // Pieces end on checksum-block boundaries (no block is read twice), and the next piece
        // is read from disk while the current one is being sent.
        const fetch = (at: number) => {
          const want = Math.min(STREAM_PIECE - (at % CHECKSUM_BLOCK), end - at);
          const p = pool(() => store.read(handle, version, at, want)).then((buf) => ({ buf, want }));
          p.catch(() => undefined); // observed below, unless the reader went away first
          return p;
        };
        let pos = offset;
        let next = fetch(pos); // at least one round: a zero-length read still checks handle and version
        for (;;) {
          const { buf, want } = await next;
          if (call.cancelled || buf.length === 0) break;
          pos += buf.length;
          countBytes('read', buf.length);
          const more = buf.length === want && pos < end;
          if (more) next = fetch(pos);
          if (!call.write({ data: buf })) await waitWritable(call);
          if (!more) break;
        }
        if (!call.cancelled) call.end();
      })()
        .catch((err) => {
          failed = true;
          if (!call.cancelled) call.emit('error', toServiceError(log, 'Read', err, requestFields(call, t0)));
        })
        .finally(() => {
          leave();
          done(failed);
        });
    },

    ReadSmall: unaryHandler<ReadRequest__Output, ReadReply>(log, 'ReadSmall', (req) =>
      admission.track(async () => {
        return { data: await readOne(req, STREAM_PIECE) };
      }),
    ),

    ReadBatch: unaryHandler<ReadBatchRequest__Output, ReadBatchReply>(log, 'ReadBatch', (req) =>
      admission.track(async () => {
        const reads = req.reads ?? [];
        if (reads.length > READ_BATCH_MAX) throw new GfsError('EINVAL', `ReadBatch of ${reads.length} reads: at most ${READ_BATCH_MAX}`);
        const total = reads.reduce((n, r) => n + (Number(r.length) || 0), 0);
        if (total > READ_BATCH_BYTES) throw new GfsError('EINVAL', `ReadBatch of ${total} bytes: at most ${READ_BATCH_BYTES}`);
        const results = await Promise.all(
          reads.map(async (r) => {
            try {
              return { data: await readOne(r, READ_BATCH_BYTES), errno: '', error: '' };
            } catch (err) {
              const e = err instanceof GfsError ? err : new GfsError('EIO', String((err as Error)?.message ?? err));
              return { data: Buffer.alloc(0), errno: e.code, error: e.message };
            }
          }),
        );
        return { results };
      }),
    ),

    // Deleting a chunk needs its exclusive lock: a Read streaming it (a client's, or a clone's
    // at another server) finishes its current piece and then fails with ENOENT; a clone being
    // copied here is aborted and never installed (ChunkStore.delete).
    Delete: unaryHandler(log, 'Delete', (req) =>
      admission.track(async () => {
        const handles = req.handles ?? [];
        const removed = await store.delete(handles);
        for (const h of handles) order.forget(h);
        if (removed > 0) log.info({ removed, asked: handles.length }, 'chunks deleted');
        return {};
      }),
    ),

    SetVersion: unaryHandler(log, 'SetVersion', (req) =>
      admission.track(async () => {
        await store.setVersion(req.handle, req.oldVersion, req.newVersion);
        return {};
      }),
    ),

    Truncate: unaryHandler(log, 'Truncate', (req) =>
      admission.track(async () => {
        await store.truncate(req.handle, req.version, req.length);
        return {};
      }),
    ),

    Sync: unaryHandler(log, 'Sync', (req) =>
      admission.track(async () => {
        allow(req.token, 'read', req.handle, req.version);
        await store.sync(req.handle, req.version);
        return {};
      }),
    ),

    Clone: unaryHandler<CloneRequest__Output, Empty>(log, 'Clone', (req, call) =>
      admission.track(async () => {
        const ac = new AbortController();
        const cancelled = () => ac.abort(new GfsError('EIO', `chunk ${req.handle}: Clone cancelled by the caller`, grpc.status.CANCELLED));
        call.on('cancelled', cancelled);
        if (call.cancelled) cancelled();
        try {
          await deps.cloner.clone(req, ac.signal);
        } finally {
          call.off('cancelled', cancelled);
        }
        return {};
      }),
    ),

    Status: unaryHandler(log, 'Status', async () => ({
      serverId: deps.serverId(),
      capacity: await deps.capacity(),
      used: store.used,
      chunks: store.chunkCount,
      load: admission.inFlight,
    })),
  };
}
