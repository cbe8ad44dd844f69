// Data-plane calls to one chunkserver: streamed read, streamed push, ordered write, sync.
// Each takes a deadline scaled by the bytes it moves; none can wait forever.
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, GfsError } from '../common/errors.js';
import { callUnary, ClientPool } from '../common/rpc.js';
import { proto } from '../common/proto.js';
import { STREAM_PIECE } from '../common/limits.js';
import { OpStats } from '../common/op-stats.js';
import type { ChunkServerClient } from '../generated/gfs/ChunkServer.js';
import type { ReadRequest, ReadReply__Output, WriteReply__Output, WriteRequest, Empty__Output, PushReply__Output } from '../generated/gfs/index.js';
import { DATA_CALL_MS_PER_MIB } from './options.js';
import type { ClientSecurity } from '../common/auth.js';

export class ChunkRpc {
  readonly pool: ClientPool<ChunkServerClient>;

  constructor(
    private readonly baseTimeoutMs: number,
    private readonly stats = new OpStats(),
    security?: ClientSecurity,
  ) {
    this.pool = new ClientPool<ChunkServerClient>(proto().gfs.ChunkServer as never, security);
  }

  timeoutFor(bytes: number): number {
    return this.baseTimeoutMs + Math.ceil((bytes / (1024 * 1024)) * DATA_CALL_MS_PER_MIB);
  }

  /**
   * Reads [offset, offset+length) of a chunk into `into` at `at`; returns the bytes the replica
   * had (short when the chunk is shorter: the caller zero-fills up to the file size).
   */
  read(addr: string, handle: number, version: number, offset: number, length: number, into: Buffer, at: number, token?: Buffer): Promise<number> {
    return this.stats.time(length <= STREAM_PIECE ? 'chunk.ReadSmall' : 'chunk.Read', () => this.readRaw(addr, handle, version, offset, length, into, at, token));
  }

  private readRaw(addr: string, handle: number, version: number, offset: number, length: number, into: Buffer, at: number, token?: Buffer): Promise<number> {
    const client = this.pool.get(addr);
    if (length <= STREAM_PIECE) {
      return callUnary<ReadRequest, ReadReply__Output>(client, client.ReadSmall, { handle, version, offset, length, token }, this.timeoutFor(length), `read chunk ${handle} from ${addr}`).then(
        ({ data }) => {
          if (data.length > length) throw new GfsError('EIO', `chunkserver ${addr} sent more than asked for chunk ${handle}`);
          data.copy(into, at);
          return data.length;
        },
      );
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

  /** Streams `data` to chain[0], which forwards it along chain[1..] while receiving. */
  /** `handle` + `token`: the chunk the data is for and a write token for it (first message). */
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

  sync(addr: string, handle: number, version: number, token?: Buffer): Promise<Empty__Output> {
    const client = this.pool.get(addr);
    return this.stats.time('chunk.Sync', () => callUnary(client, client.Sync, { handle, version, token }, this.baseTimeoutMs * 3, `sync chunk ${handle} at ${addr}`));
  }

  close(): void {
    this.pool.close();
  }
}

