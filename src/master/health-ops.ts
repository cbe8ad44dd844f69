// Replication goals (SetGoal) and the file-system check (Fsck): what `gfs setgoal` and
// `gfs fsck` ask the master.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { GfsError, einval } from '../common/errors.js';
import type { MasterCore } from './core.js';
import { type Cred, type Inode, isDir, isReg } from './inode.js';
import { chunkHealth } from './replication-scheduler.js';

/** Highest replication goal (as the master's --replication). */
export const MAX_GOAL = 16;
/** Inodes per setGoal record (a recursive change of a big tree is several records). */
const SETGOAL_BATCH = 10_000;
/** Files with findings listed by default / at most. */
export const FSCK_FINDINGS_DEFAULT = 1_000;
export const FSCK_FINDINGS_MAX = 100_000;
/** Inodes checked between yields to the event loop. */
const FSCK_SLICE = 5_000;

export interface FsckReplicaOut {
  serverId: string;
  addr: string;
  state: string;
}

export interface FsckChunkOut {
  index: number;
  handle: number;
  version: number;
  goal: number;
  live: number;
  replicas: FsckReplicaOut[];
  status: 'under-replicated' | 'missing' | 'over-replicated' | 'ok';
  corrupt: string[];
}

export interface FsckFileOut {
  path: string;
  ino: number;
  size: number;
  goal: number;
  chunks: FsckChunkOut[];
}

export interface FsckOut {
  files: number;
  directories: number;
  chunks: number;
  replicas: number;
  underReplicated: number;
  missing: number;
  corrupt: number;
  overReplicated: number;
  findings: FsckFileOut[];
  truncated: boolean;
  repairBacklog: number;
  waitingForReports: boolean;
}

export class HealthOps {
  constructor(private readonly core: MasterCore) {}

  /**
   * Sets the goal of `path` (and with `recursive`, of everything below it). New files take
   * their directory's goal. Root may change any inode; others only those they own.
   */
  setGoal(path: string, goal: number, recursive: boolean, cred: Cred): { changed: number; inode: Inode } {
    if (!Number.isInteger(goal) || goal < 1 || goal > MAX_GOAL) throw einval(`goal must be 1..${MAX_GOAL}, got ${goal}`);
    const { ns } = this.core;
    const top = ns.resolve(path);
    const mayChange = (i: Inode) => cred.uid === 0 || cred.uid === i.uid;
    if (!mayChange(top)) throw new GfsError('EPERM', `only the owner or root may change the goal of ${path}`);
    const inos: number[] = [];
    const handles: number[] = [];
    const visit = (i: Inode) => {
      if (i.goal !== goal && mayChange(i)) {
        inos.push(i.ino);
        for (const h of i.chunks?.values() ?? []) handles.push(h);
      }
    };
    visit(top);
    if (recursive && isDir(top)) {
      const stack = [top];
      while (stack.length) {
        const dir = stack.pop()!;
        for (const ino of dir.entries!.values()) {
          const child = ns.get(ino);
          if (!child) continue;
          visit(child);
          if (isDir(child)) stack.push(child);
        }
      }
    }
    for (let i = 0; i < inos.length; i += SETGOAL_BATCH) {
      this.core.mutate({ op: 'setGoal', inos: inos.slice(i, i + SETGOAL_BATCH), goal });
    }
    if (inos.length) {
      this.core.log.info({ path, goal, recursive, inodes: inos.length, chunks: handles.length }, 'goal set');
      this.core.repair.markDirty(handles);
    }
    return { changed: inos.length, inode: top };
  }

  /** Walks `path` and reports every chunk that is not at its goal, with totals. */
  async fsck(path: string, maxFindings: number): Promise<FsckOut> {
    const { ns, registry, repair } = this.core;
    const limit = Math.min(FSCK_FINDINGS_MAX, maxFindings > 0 ? maxFindings : FSCK_FINDINGS_DEFAULT);
    const start = ns.resolve(path || '/');
    const out: FsckOut = {
      files: 0,
      directories: 0,
      chunks: 0,
      replicas: 0,
      underReplicated: 0,
      missing: 0,
      corrupt: 0,
      overReplicated: 0,
      findings: [],
      truncated: false,
      repairBacklog: repair.backlog(),
      waitingForReports: this.core.waitingForReports(),
    };
    const seen = new Set<number>();
    const stack: Array<{ ino: number; path: string }> = [{ ino: start.ino, path: normalise(path) }];
    let work = 0;
    while (stack.length) {
      if (++work % FSCK_SLICE === 0) await yieldToLoop();
      const { ino, path: p } = stack.pop()!;
      const inode = ns.get(ino);
      if (!inode) continue; // removed while we walked
      if (isDir(inode)) {
        out.directories++;
        const names = ns.sortedNames(inode);
        for (let i = names.length - 1; i >= 0; i--) {
          const child = inode.entries!.get(names[i]!);
          if (child !== undefined) stack.push({ ino: child, path: p === '/' ? `/${names[i]}` : `${p}/${names[i]}` });
        }
        continue;
      }
      if (!isReg(inode) || seen.has(ino)) continue;
      seen.add(ino);
      out.files++;
      const bad: FsckChunkOut[] = [];
      for (const [index, handle] of [...inode.chunks!.entries()].sort((a, b) => a[0] - b[0])) {
        const meta = this.core.chunks.get(handle);
        if (!meta) continue;
        out.chunks++;
        const h = chunkHealth(this.core, meta);
        if (h.empty) continue;
        out.replicas += h.live;
        const corrupt = repair.corruptOn(handle);
        let status: FsckChunkOut['status'] = 'ok';
        if (h.live === 0) {
          status = 'missing';
          out.missing++;
        } else if (h.live < h.goal) {
          status = 'under-replicated';
          out.underReplicated++;
        } else if (h.alive.length > h.goal) {
          status = 'over-replicated';
          out.overReplicated++;
        }
        if (corrupt.length) out.corrupt++;
        if (status === 'ok' && !corrupt.length) continue;
        bad.push({
          index,
          handle,
          version: meta.version,
          goal: h.goal,
          live: h.live,
          replicas: h.replicas.map((id) => ({ serverId: id, addr: registry.get(id)?.addr ?? '', state: registry.stateOf(id) })),
          status,
          corrupt,
        });
      }
      if (!bad.length) continue;
      if (out.findings.length < limit) out.findings.push({ path: p, ino, size: inode.size, goal: inode.goal, chunks: bad });
      else out.truncated = true;
    }
    return out;
  }
}

function normalise(path: string): string {
  if (!path || path === '/') return '/';
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}
