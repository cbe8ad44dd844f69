// Data-plane calls to one chunkserver: streamed read, streamed push, ordered write, sync.
// Each takes a deadline scaled by the bytes it moves; none can wait forever. A replica with a
// data channel address is read, written and synced over it (common/data-conn.ts); the gRPC
// calls remain for servers without one.
import * as grpc from '@grpc/grpc-js';
import pLimit, { type LimitFunction } from 'p-limit';
import { fromServiceError, GfsError, isErrnoName } from '../common/errors.js';
import { callUnary, ClientPool } from '../common/rpc.js';
import { proto } from '../common/proto.js';
import { READ_BATCH_BYTES, READ_BATCH_MAX, STREAM_PIECE } from '../common/limits.js';
import { okCodec, readCodec, syncCodec, writeCodec } from '../common/data-codec.js';
import { DataConnPool } from '../common/data-conn.js';
import { Kind } from '../common/data-frame.js';
import { OpStats } from '../common/op-stats.js';
import type { ChunkServerClient } from '../generated/gfs/ChunkServer.js';
import type { ChunkLocation__Output, DataOk__Output, ReadBatchReply__Output, ReadBatchRequest, ReadRequest, ReadReply__Output, WriteReply__Output, WriteRequest, Empty__Output, PushReply__Output } from '../generated/gfs/index.js';
import { DATA_CALL_MS_PER_MIB } from './options.js';
import { authValue, type ClientSecurity } from '../common/auth.js';

/** Where a replica is: its gRPC address, and its data channel address when it has one. */
export type ReplicaTarget = Pick<ChunkLocation__Output, 'addr' | 'dataAddr'>;

/**
 * Data channel reads one client keeps in flight to a server; more wait here, in order. The
 * server sheds requests past its own bounds (1,024 per connection, its read queue) with EAGAIN,
 * and each shed read would cost a retry and its backoff: 10,000 reads in flight ran at a third
 * of what 64 did. Each read's deadline starts when it is sent; the wait is bounded by the
 * deadlines of the reads ahead of it.
 */
const DATA_READS_PER_SERVER = 256;

/** Small reads sent one by one to a server before further ones are coalesced into ReadBatch. */
const DIRECT_READS_PER_SERVER = 4;

interface PendingRead {
  req: ReadRequest;
  resolve(data: Buffer): void;
  reject(err: unknown): void;
}

export class ChunkRpc {
  private readonly smallReads = new Map<string, { inflight: number; waiting: PendingRead[] }>();
  private readonly dataReads = new Map<string, LimitFunction>();
  readonly pool: ClientPool<ChunkServerClient>;
  /** Data channel connections; undefined = gRPC only. */
  private readonly data: DataConnPool | undefined;

  constructor(
    private readonly baseTimeoutMs: number,
    private readonly stats = new OpStats(),
    security?: ClientSecurity,
    dataChannel = true,
    /** The caller's own bound on pieces in flight: at or below ours, ours is never reached. */
    private readonly callerPieceBound = Number.POSITIVE_INFINITY,
  ) {
    this.pool = new ClientPool<ChunkServerClient>(proto().gfs.ChunkServer as never, security);
    this.data = dataChannel ? new DataConnPool({ auth: authValue(security), tls: security?.tls }) : undefined;
  }

  /** The data channel address to use for a replica, or undefined for gRPC. */
  dataAddrOf(r: ReplicaTarget): string | undefined {
    return this.data && r.dataAddr ? r.dataAddr : undefined;
  }

  timeoutFor(bytes: number): number {
    return this.baseTimeoutMs + Math.ceil((bytes / (1024 * 1024)) * DATA_CALL_MS_PER_MIB);
  }

  /**
   * Reads [offset, offset+length) of a chunk into `into` at `at`; returns the bytes the replica
   * had (short when the chunk is shorter: the caller zero-fills up to the file size).
   */
  read(r: ReplicaTarget, handle: number, version: number, offset: number, length: number, into: Buffer, at: number, token?: Buffer): Promise<number> {
    const dataAddr = this.dataAddrOf(r);
    if (dataAddr) {
      const run = () => this.stats.time('data.Read', () => this.readData(dataAddr, handle, version, offset, length, into, at, token));
      // Skipping a limiter that can never queue saves a third of a small read's promises.
      if (this.callerPieceBound <= DATA_READS_PER_SERVER) return run();
      let limit = this.dataReads.get(dataAddr);
      if (!limit) this.dataReads.set(dataAddr, (limit = pLimit(DATA_READS_PER_SERVER)));
      return limit(run);
    }
    return this.stats.time(length <= STREAM_PIECE ? 'chunk.ReadSmall' : 'chunk.Read', () => this.readRaw(r.addr, handle, version, offset, length, into, at, token));
  }

  private readData(addr: string, handle: number, version: number, offset: number, length: number, into: Buffer, at: number, token?: Buffer): Promise<number> {
    const dest = into.subarray(at, at + length);
    return this.data!.request(addr, Kind.Read, readCodec.encode({ handle, version, offset, length, token }), undefined, this.timeoutFor(length), `read chunk ${handle} from ${addr}`, dest).then((f) => {
      if (f.payload.length > length) throw new GfsError('EIO', `chunkserver ${addr} sent more than asked for chunk ${handle}`);
      // A large reply was received straight into `dest`; a small one arrived whole in one piece.
      // set(), not copy(): Buffer.copy makes a view per call, a third of a 4 KiB read's copy time.
      if (f.payload.buffer !== dest.buffer || f.payload.byteOffset !== dest.byteOffset) dest.set(f.payload);
      return f.payload.length;
    });
  }

  /**
   * A write over the data channel: `req.secondaries` are data addresses; the primary applies
   * it and forwards it to each of them before it answers.
   */
  writeData(addr: string, req: Omit<WriteRequest, 'data' | 'dataId'>, data: Buffer): Promise<DataOk__Output> {
    return this.stats.time('data.Write', async () => {
      const f = await this.data!.request(addr, Kind.Write, writeCodec.encode(req), data, this.timeoutFor(data.length * 2), `write chunk ${req.handle} at ${addr}`);
      return okCodec.decode(f.header);
    });
  }

  private readRaw(addr: string, handle: number, version: number, offset: number, length: number, into: Buffer, at: number, token?: Buffer): Promise<number> {
    const client = this.pool.get(addr);
    if (length <= STREAM_PIECE) {
      return this.readSmall(addr, { handle, version, offset, length, token }).then((data) => {
        if (data.length > length) throw new GfsError('EIO', `chunkserver ${addr} sent more than asked for chunk ${handle}`);
        data.copy(into, at);
        return data.length;
      });
    }
    return new Promise<number>((resolve, reject) => {
      let got = 0;
      let failed = false;
      const call = client.Read({ handle, version, offset, length, token }, { deadline: Date.now() + this.timeoutFor(length) });
      call.on('data', (msg: ReadReply__Output) => {
        const data = msg.data;
        if (got + data.length > length) {
          failed = true;
          call.cancel();
          reject(new GfsError('EIO', `chunkserver ${addr} sent more than asked for chunk ${handle}`));
          return;
        }
        data.copy(into, at + got);
        got += data.length;
      });
      call.on('error', (err) => {
        if (!failed) reject(fromServiceError(err, `read chunk ${handle} from ${addr}`));
        failed = true;
      });
      call.on('end', () => {
        if (!failed) resolve(got);
      });
    });
  }

  /**
   * One small read. The first few in flight to a server go as single ReadSmall calls; beyond
   * that they wait (bounded: each in-flight call has a deadline) and leave together as one
   * ReadBatch when a call returns, so thousands of reads in flight cost far fewer RPCs.
   */
  private readSmall(addr: string, req: ReadRequest): Promise<Buffer> {
    let q = this.smallReads.get(addr);
    if (!q) this.smallReads.set(addr, (q = { inflight: 0, waiting: [] }));
    if (q.inflight < DIRECT_READS_PER_SERVER) {
      q.inflight++;
      const client = this.pool.get(addr);
      return callUnary<ReadRequest, ReadReply__Output>(client, client.ReadSmall, req, this.timeoutFor(Number(req.length)), `read chunk ${req.handle} from ${addr}`)
        .then((r) => r.data)
        .finally(() => this.done(addr));
    }
    return new Promise<Buffer>((resolve, reject) => q.waiting.push({ req, resolve, reject }));
  }

  private done(addr: string): void {
    const q = this.smallReads.get(addr)!;
    q.inflight--;
    while (q.inflight < DIRECT_READS_PER_SERVER && q.waiting.length > 0) {
      const batch: PendingRead[] = [];
      let bytes = 0;
      while (q.waiting.length > 0 && batch.length < READ_BATCH_MAX && bytes + Number(q.waiting[0]!.req.length) <= READ_BATCH_BYTES) {
        const r = q.waiting.shift()!;
        bytes += Number(r.req.length);
        batch.push(r);
      }
      q.inflight++;
      this.readBatch(addr, batch, bytes).finally(() => this.done(addr));
    }
    if (q.inflight === 0 && q.waiting.length === 0) this.smallReads.delete(addr);
  }

  private async readBatch(addr: string, batch: PendingRead[], bytes: number): Promise<void> {
    const client = this.pool.get(addr);
    try {
      const reply = await this.stats.time('chunk.ReadBatch', () =>
        callUnary<ReadBatchRequest, ReadBatchReply__Output>(client, client.ReadBatch, { reads: batch.map((b) => b.req) }, this.timeoutFor(bytes), `read ${batch.length} chunk pieces from ${addr}`),
      );
      batch.forEach((b, i) => {
        const r = reply.results[i];
        if (!r) b.reject(new GfsError('EIO', `chunkserver ${addr} answered ${reply.results.length} of ${batch.length} batched reads`));
        else if (r.errno) b.reject(new GfsError(isErrnoName(r.errno) ? r.errno : 'EIO', r.error || r.errno));
        else b.resolve(r.data);
      });
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /**
   * Streams `data` to chain[0], which forwards it along chain[1..] while receiving.
   * `handle` + `token`: the chunk the data is for and a write token for it (first message).
   */
  push(chain: string[], dataId: string, data: Buffer, handle = 0, token?: Buffer): Promise<void> {
    return this.stats.time('chunk.PushData', () => this.pushRaw(chain, dataId, data, handle, token));
  }

  private pushRaw(chain: string[], dataId: string, data: Buffer, handle: number, token: Buffer | undefined): Promise<void> {
    const [first, ...rest] = chain;
    if (!first) return Promise.reject(new GfsError('EINVAL', 'push with an empty chain'));
    const client = this.pool.get(first);
    return new Promise<void>((resolve, reject) => {
      const call = client.PushData(
        { deadline: Date.now() + this.timeoutFor(data.length * chain.length) },
        (err: grpc.ServiceError | null, _res?: PushReply__Output) => {
          if (err) reject(fromServiceError(err, `push ${dataId} to ${first}`));
          else resolve();
        },
      );
      const writeAll = async () => {
        for (let off = 0, i = 0; off < data.length || i === 0; off += STREAM_PIECE, i++) {
          const piece = data.subarray(off, Math.min(off + STREAM_PIECE, data.length));
          const msg = i === 0 ? { dataId, chain: rest, data: piece, total: data.length, handle, token } : { data: piece };
          if (!call.write(msg)) await new Promise<void>((r) => call.once('drain', r));
        }
        call.end();
      };
      writeAll().catch((err) => {
        call.cancel();
        reject(fromServiceError(err, `push ${dataId} to ${first}`));
      });
    });
  }

  write(addr: string, req: WriteRequest, bytes: number): Promise<WriteReply__Output> {
    const client = this.pool.get(addr);
    return this.stats.time('chunk.Write', () => callUnary(client, client.Write, req, this.timeoutFor(bytes * 2), `write chunk ${req.handle} at ${addr}`));
  }

  sync(r: ReplicaTarget, handle: number, version: number, token?: Buffer): Promise<unknown> {
    const dataAddr = this.dataAddrOf(r);
    const timeout = this.baseTimeoutMs * 3;
    if (dataAddr) {
      return this.stats.time('data.Sync', () =>
        this.data!.request(dataAddr, Kind.Sync, syncCodec.encode({ handle, version, token }), undefined, timeout, `sync chunk ${handle} at ${dataAddr}`),
      );
    }
    const client = this.pool.get(r.addr);
    return this.stats.time('chunk.Sync', (): Promise<Empty__Output> => callUnary(client, client.Sync, { handle, version, token }, timeout, `sync chunk ${handle} at ${r.addr}`));
  }

  close(): void {
    this.pool.close();
    this.data?.close();
  }
}

