// `gfs fsck [PATH]` and `gfs setgoal N PATH`: replication health as the master sees it.
import { GfsClient } from '../client/client.js';
import { GfsError } from '../common/errors.js';
import type { FsckReply__Output } from '../generated/gfs/index.js';

/** A check of a big tree takes a while: the master walks it in slices. */
const FSCK_CALL_TIMEOUT_MS = 10 * 60_000;

/** True when the reply shows data at risk (the exit status is 1 then). */
export function atRisk(r: Pick<FsckReply__Output, 'underReplicated' | 'missing' | 'corrupt'>): boolean {
  return r.underReplicated > 0 || r.missing > 0 || r.corrupt > 0;
}

export async function runFsck(master: string, path: string, o: { json: boolean; maxFindings: number }): Promise<void> {
  const client = new GfsClient({ master, masterRetryWindowMs: 5_000, masterCallTimeoutMs: FSCK_CALL_TIMEOUT_MS });
  const tty = !o.json && process.stderr.isTTY;
  let spin: NodeJS.Timeout | undefined;
  if (tty) {
    const t0 = Date.now();
    const frames = '|/-\\';
    let i = 0;
    spin = setInterval(() => process.stderr.write(`\rchecking ${path} ${frames[i++ % 4]} ${((Date.now() - t0) / 1000).toFixed(0)} s`), 200);
  }
  let r: FsckReply__Output;
  try {
    r = await client.fsck(path, Number.isFinite(o.maxFindings) ? o.maxFindings : 0);
  } finally {
    if (spin) {
      clearInterval(spin);
      process.stderr.write('\r\x1b[K');
    }
    await client.close();
  }
  const risk = atRisk(r);
  if (o.json) {
    process.stdout.write(JSON.stringify({ master, path, healthy: !risk, ...r }, null, 2) + '\n');
  } else {
    const lines: string[] = [];
    for (const f of r.findings) {
      lines.push(`${f.path}  (ino ${f.ino}, ${f.size} bytes, goal ${f.goal})`);
      for (const c of f.chunks) {
        const where = c.replicas.map((x) => (x.state === 'alive' ? x.serverId : `${x.serverId}(${x.state})`)).join(',') || '-';
        const bad = c.corrupt.length ? `  corrupt on ${c.corrupt.join(',')}` : '';
        lines.push(`  chunk ${c.index} handle ${c.handle} v${c.version}: ${c.status}, ${c.live}/${c.goal} live  [${where}]${bad}`);
      }
    }
    if (r.truncated) lines.push(`... more files with findings (raise --max-findings)`);
    if (lines.length) lines.push('');
    lines.push(
      `files ${r.files}  directories ${r.directories}  chunks ${r.chunks}  live replicas ${r.replicas}`,
      `under-replicated ${r.underReplicated}  missing ${r.missing}  corrupt ${r.corrupt}  over-replicated ${r.overReplicated}  repair backlog ${r.repairBacklog}`,
    );
    if (r.waitingForReports) lines.push('note: the master restarted recently; chunkservers may still be reporting');
    lines.push(risk ? 'status: DATA AT RISK' : 'status: HEALTHY');
    process.stdout.write(lines.join('\n') + '\n');
  }
  if (risk) process.exitCode = 1;
}

export async function runSetGoal(master: string, path: string, goalArg: string, recursive: boolean): Promise<void> {
  const goal = Number(goalArg);
  if (!Number.isInteger(goal) || goal < 1) throw new GfsError('EINVAL', `goal must be a positive integer, got "${goalArg}"`);
  const client = new GfsClient({ master, masterRetryWindowMs: 5_000 });
  try {
    const r = await client.setGoal(path, goal, { recursive });
    process.stdout.write(`${path}: goal ${goal}${recursive ? ' (recursive)' : ''}, ${r.changed} inode${r.changed === 1 ? '' : 's'} changed\n`);
  } finally {
    await client.close();
  }
}
