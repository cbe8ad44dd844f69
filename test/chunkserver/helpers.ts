// Test helpers: a fake master (Register/Heartbeat only), chunkserver clients, push and read.
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ClientSecurity } from '../../src/common/auth.js';
import { TokenSigner, type TokenMode } from '../../src/common/chunk-token.js';
import { serverKeys } from '../../src/common/cluster-secret.js';
import { ERRNO_METADATA_KEY } from '../../src/common/errors.js';
import { proto } from '../../src/common/proto.js';
import { ClientPool, startServer, stopServer } from '../../src/common/rpc.js';
import type { ChunkServerClient } from '../../src/generated/gfs/ChunkServer.js';
import type {
  HeartbeatReply,
  HeartbeatRequest__Output,
  ReadRequest,
  RegisterReply,
  RegisterRequest__Output,
} from '../../src/generated/gfs/index.js';

export async function tempDir(prefix = 'gfs-cs-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 17 + (i >> 8)) & 0xff;
  return b;
}

export async function until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface FakeMaster {
  addr: string;
  port: number;
  registers: RegisterRequest__Output[];
  beats: HeartbeatRequest__Output[];
  /** Handles to put in the next heartbeat reply to a server id. */
  deleteNext: Map<string, number[]>;
  reregisterNext: Set<string>;
  stop(): Promise<void>;
}

export async function startFakeMaster(port = 0): Promise<FakeMaster> {
  let next = 1;
  const m = {
    registers: [] as RegisterRequest__Output[],
    beats: [] as HeartbeatRequest__Output[],
    deleteNext: new Map<string, number[]>(),
    reregisterNext: new Set<string>(),
  };
  const impl = {
    Register: (call: grpc.ServerUnaryCall<RegisterRequest__Output, RegisterReply>, cb: grpc.sendUnaryData<RegisterReply>) => {
      m.registers.push(call.request);
      cb(null, { serverId: call.request.serverId || `cs-${next++}`, heartbeatMs: 0, delete: [] });
    },
    Heartbeat: (call: grpc.ServerUnaryCall<HeartbeatRequest__Output, HeartbeatReply>, cb: grpc.sendUnaryData<HeartbeatReply>) => {
      const id = call.request.serverId;
      m.beats.push(call.request);
      const del = m.deleteNext.get(id) ?? [];
      m.deleteNext.delete(id);
      const rereg = m.reregisterNext.delete(id);
      cb(null, { delete: del, reregister: rereg });
    },
  };
  const { server, port: bound } = await startServer([[proto().gfs.Master.service, impl]], '127.0.0.1', port);
  return { ...m, addr: `127.0.0.1:${bound}`, port: bound, stop: () => stopServer(server, 500) };
}

/** The cluster secret of these tests: `startChunkserver({ ..., secret: TEST_SECRET })`. */
export const TEST_SECRET = randomBytes(32);
export const TEST_KEYS = serverKeys(TEST_SECRET);
/** What a master (or a peer chunkserver) presents. */
export const TEST_SECURITY: ClientSecurity = { keys: TEST_KEYS, role: 'server' };
const signer = new TokenSigner(TEST_KEYS.tokenKey!);

/** A token as the master would issue it. */
export function tokenFor(mode: TokenMode, handle: number, version: number, ttlMs?: number): Buffer {
  return signer.sign(mode, handle, version, ttlMs);
}

export const clients = new ClientPool<ChunkServerClient>(proto().gfs.ChunkServer, TEST_SECURITY);

/** The request with the token a client would have got from the master (unless it has one). */
function withToken(method: string, req: object): object {
  const r = req as { handle?: unknown; version?: unknown; token?: unknown };
  if (r.token !== undefined || typeof r.handle !== 'number') return req;
  const mode: TokenMode = method === 'Write' || method === 'ApplyWrite' ? 'write' : 'read';
  if (!['Write', 'ApplyWrite', 'Read', 'ReadSmall', 'Sync', 'Clone'].includes(method)) return req;
  return { ...req, token: tokenFor(mode, r.handle, typeof r.version === 'number' ? r.version : 0) };
}

/** Pushes data to addr (with chain) in pieces of `piece` bytes, respecting backpressure. */
/** `handle`: the chunk the push is for (its write token goes in the first message). */
export function push(addr: string, dataId: string, chain: string[], data: Buffer, piece = 64 * 1024, handle = 1): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = clients.get(addr).PushData({ deadline: Date.now() + 10_000 }, (err, reply) =>
      err ? reject(err) : resolve(reply!.received),
    );
    stream.on('error', () => undefined);
    const pieces: Buffer[] = [];
    for (let off = 0; off < data.length; off += piece) pieces.push(data.subarray(off, off + piece));
    if (pieces.length === 0) pieces.push(Buffer.alloc(0));
    let i = 0;
    const writeMore = () => {
      while (i < pieces.length) {
        const msg = i === 0 ? { dataId, chain, total: data.length, data: pieces[0], handle, token: tokenFor('write', handle, 0) } : { data: pieces[i] };
        i++;
        if (!stream.write(msg) && i < pieces.length) return void stream.once('drain', writeMore);
      }
      stream.end();
    };
    writeMore();
  });
}

export function read(addr: string, req: ReadRequest): Promise<{ data: Buffer; messages: number }> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const stream = clients.get(addr).Read(withToken('Read', req), { deadline: Date.now() + 10_000 });
    stream.on('data', (m: { data: Buffer }) => parts.push(m.data));
    stream.on('error', reject);
    stream.on('end', () => resolve({ data: Buffer.concat(parts), messages: parts.length }));
  });
}

/** Calls a unary ChunkServer method and resolves the reply (rejects with the ServiceError). */
export function call<Res>(addr: string, method: keyof ChunkServerClient & string, req: object): Promise<Res> {
  return new Promise((resolve, reject) => {
    const c = clients.get(addr) as unknown as Record<string, (...a: unknown[]) => unknown>;
    c[method]!.call(c, withToken(method, req), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** The gRPC code, errno and message a call failed with. */
export async function failure(p: Promise<unknown>): Promise<{ code: number; errno: string; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, errno: String(e.metadata?.get(ERRNO_METADATA_KEY)?.[0] ?? ''), details: e.details };
  }
  throw new Error('expected the call to fail');
}
