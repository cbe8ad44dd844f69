// Shared fixtures for master tests: a core with a fake clock and fake chunkserver calls.
import { MasterCore, type MasterConfig } from '../../src/master/core.js';
import type { ChunkServerRpc, CloneArgs } from '../../src/master/chunkserver-calls.js';
import { MasterState } from '../../src/master/mutations.js';
import { NamespaceOps } from '../../src/master/namespace-ops.js';
import { ChunkOps } from '../../src/master/chunk-ops.js';
import { AttrOps } from '../../src/master/attr-ops.js';
import { ClusterOps } from '../../src/master/cluster-ops.js';
import { ROOT_CRED, type Cred } from '../../src/master/inode.js';
import { silentLogger } from '../../src/common/logger.js';
import { GfsError } from '../../src/common/errors.js';

export interface RecordedCall {
  op: 'setVersion' | 'truncate' | 'delete' | 'clone';
  addr: string;
  handle?: number;
  handles?: number[];
  oldVersion?: number;
  newVersion?: number;
  version?: number;
  length?: number;
  source?: string;
  bytesPerSec?: number;
  timeoutMs?: number;
}

export class FakeCalls implements ChunkServerRpc {
  readonly calls: RecordedCall[] = [];
  /** Addresses whose calls fail. */
  readonly failing = new Set<string>();
  delayMs = 0;

  private async maybe(addr: string): Promise<void> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failing.has(addr)) throw new GfsError('ECONNREFUSED', `fake failure on ${addr}`);
  }
  async setVersion(addr: string, handle: number, oldVersion: number, newVersion: number) {
    this.calls.push({ op: 'setVersion', addr, handle, oldVersion, newVersion });
    await this.maybe(addr);
  }
  async truncate(addr: string, handle: number, version: number, length: number) {
    this.calls.push({ op: 'truncate', addr, handle, version, length });
    await this.maybe(addr);
  }
  async delete(addr: string, handles: number[]) {
    this.calls.push({ op: 'delete', addr, handles });
    await this.maybe(addr);
  }
  async clone(addr: string, req: CloneArgs, timeoutMs: number) {
    this.calls.push({ op: 'clone', addr, handle: req.handle, version: req.version, source: req.source, bytesPerSec: req.bytesPerSec, timeoutMs });
    await this.maybe(addr);
  }
  close() {}
  of(op: RecordedCall['op']) {
    return this.calls.filter((c) => c.op === op);
  }
}

export const T0 = { sec: 1_700_000_000, nsec: 123 };

export function makeMaster(cfg: Partial<MasterConfig> = {}) {
  let clockMs = 1_000;
  const calls = new FakeCalls();
  const config: MasterConfig = {
    chunkSize: 64 * 1024,
    replication: 3,
    heartbeatMs: 100,
    suspectAfterMs: 300,
    deadAfterMs: 1000,
    gcDelayMs: 0,
    ...cfg,
  };
  const core = new MasterCore(config, silentLogger, { calls, clock: () => clockMs, state: new MasterState(T0, config.replication) });
  const chunks = new ChunkOps(core);
  return {
    core,
    calls,
    ns: new NamespaceOps(core),
    chunks,
    attrs: new AttrOps(core, chunks),
    cluster: new ClusterOps(core, chunks),
    advance(ms: number) {
      clockMs += ms;
    },
  };
}

export type TestMaster = ReturnType<typeof makeMaster>;

/** Registers n servers (cs-0..) with the given capacity/used. */
export function addServers(m: TestMaster, n: number, capacity = 1_000_000, used = 0): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = m.cluster.register({ serverId: `cs-${i}`, addr: `127.0.0.1:${7000 + i}`, capacity, used, chunks: [] });
    ids.push(r.serverId);
  }
  return ids;
}

export const USER: Cred = { uid: 1000, gid: 1000, groups: [1000, 50] };
export const ROOT = ROOT_CRED;

/** Expects fn to throw a GfsError with this code. */
export async function code(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof GfsError) return err.code;
    throw err;
  }
  return 'OK';
}
