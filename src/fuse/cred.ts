// Who is calling: uid/gid/pid from the FUSE request and, for non-root callers, the
// supplementary groups from /proc/<pid>/status so the master's group checks (chown to a group,
// setgid, group perms) agree with the kernel's.
import { readFile } from 'node:fs/promises';
import type { Cred } from '../client/api.js';
import type { Caller } from './lowlevel.js';

const GROUPS_TTL_MS = 1000;
const MAX_CACHED = 4096;

export const ROOT_CALLER: Caller = { uid: 0, gid: 0, pid: 0 };

export class CredResolver {
  private readonly groups = new Map<number, { at: number; uid: number; groups: number[] }>();

  async cred(c: Caller): Promise<Cred> {
    if (c.uid === 0 || c.pid === 0) return { uid: c.uid, gid: c.gid, groups: [] };
    return { uid: c.uid, gid: c.gid, groups: await this.groupsOf(c) };
  }

  private async groupsOf(c: Caller): Promise<number[]> {
    const now = Date.now();
    const hit = this.groups.get(c.pid);
    if (hit && hit.uid === c.uid && now - hit.at < GROUPS_TTL_MS) return hit.groups;
    let groups: number[] = [];
    try {
      const status = await readFile(`/proc/${c.pid}/status`, 'utf8');
      const line = /^Groups:\s*(.*)$/m.exec(status);
      if (line) groups = line[1]!.trim().split(/\s+/).filter(Boolean).map(Number).filter(Number.isInteger);
    } catch {
      groups = []; // the caller exited: its primary gid is all we know
    }
    if (this.groups.size >= MAX_CACHED) this.groups.clear();
    this.groups.set(c.pid, { at: now, uid: c.uid, groups });
    return groups;
  }
}
