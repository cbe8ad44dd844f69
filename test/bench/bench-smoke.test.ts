// `gfs bench --smoke` still works end to end: brings up its own cluster and mount, runs the
// quick workloads and the client-library experiments, prints the table, writes JSON + SVG, and
// leaves nothing behind. No timing assertions: only that every metric is there.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/proc-cluster.js';

const canMount = process.getuid?.() === 0 && existsSync('/dev/fuse');

// Root and FUSE are required (CI is root): a missing prerequisite fails loudly, never skips.
describe('gfs bench --smoke', () => {
  it('runs as root, where FUSE mounts work', () => expect(canMount, 'the benchmark needs root and /dev/fuse').toBe(true));
  it('runs the quick benchmark, prints the table and writes JSON with every metric', async () => {
    const out = mkdtempSync(join(tmpdir(), 'gfs-bench-smoke-'));
    try {
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        execFile(process.execPath, [CLI, 'bench', '--smoke', '--out', out], { timeout: 240_000, maxBuffer: 1 << 24 }, (err, so, se) =>
          res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: so, stderr: se }),
        );
      });
      expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
      expect(stdout).toMatch(/^metric\s+unit\s+gfs\s+target/m);
      expect(stdout).toMatch(/tar -x 200 x 4 KiB/);
      expect(stdout).toMatch(/client-library concurrency ramp/);
      expect(stdout).toMatch(/process telemetry/);

      const jsonPath = /^JSON:\s+(\S+)$/m.exec(stdout)?.[1];
      const svgPath = /^chart:\s+(\S+)$/m.exec(stdout)?.[1];
      expect(jsonPath).toBeDefined();
      expect(existsSync(svgPath!)).toBe(true);
      expect(readFileSync(svgPath!, 'utf8')).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);

      const doc = JSON.parse(readFileSync(jsonPath!, 'utf8'));
      expect(doc.runs).toHaveLength(1);
      const run = doc.runs[0];
      expect(run.system).toBe('gfs');
      expect(run.error).toBeUndefined();
      for (const key of [
        'seq_write_1M',
        'seq_read_1M',
        'small_create',
        'small_find_s',
        'small_lsR_s',
        'small_cat_s',
        'small_rm_s',
        'git_clone',
        'git_clone_s',
        'client_seq_write',
        'client_seq_read',
        'reads_serial',
        'reads_parallel',
        'reads_speedup',
        'reads_first_pass',
        'reads_first_pass_speedup',
      ]) {
        expect(typeof run.metrics[key]?.value, key).toBe('number');
        expect(run.metrics[key].value, key).toBeGreaterThan(0);
      }
      // 500 reads may fit in the heap the process already has: measured, and possibly 0.0 MB.
      for (const key of ['reads_added_rss_mb', 'reads_warm_pass_rss_mb']) {
        expect(typeof run.metrics[key]?.value, key).toBe('number');
        expect(run.metrics[key].value, key).toBeGreaterThanOrEqual(0);
      }
      expect(run.metrics.integrity_seq.value).toBe('OK');
      expect(run.metrics.integrity_small.value).toBe('OK');
      expect(run.metrics.reads_errors.value).toBe(0);
      expect(run.dispatch.reads).toBe(500);
      expect(run.ramp.map((s: { concurrency: number }) => s.concurrency)).toEqual([1, 2, 4, 8]);
      for (const s of run.ramp) expect(s.errors).toBe(0);

      // Telemetry of every daemon, per workload.
      const procs = new Set<string>(doc.telemetry.flatMap((p: { processes: object }) => Object.keys(p.processes)));
      for (const p of ['master', 'chunkserver-1', 'chunkserver-2', 'chunkserver-3', 'mount']) expect(procs, p).toContain(p);
      const workloads = new Set<string>(doc.telemetry.map((p: { workload: string }) => p.workload));
      for (const w of ['seq_write', 'tar -x', 'ls -lR', 'git clone', 'ramp']) expect(workloads, w).toContain(w);
      // The kernel's share of each process's CPU, in the JSON and as a column of the table.
      expect(stdout).toMatch(/CPU% max\s+kernel %/);
      for (const ph of doc.telemetry as Array<{ workload: string; processes: Record<string, { sysPct: number }> }>) {
        for (const [p, s] of Object.entries(ph.processes)) {
          expect(s.sysPct, `${ph.workload} ${p}`).toBeGreaterThanOrEqual(0);
          expect(s.sysPct, `${ph.workload} ${p}`).toBeLessThanOrEqual(100);
        }
      }
      // A chunkserver storing the run's writes spends some of its time in the kernel.
      const csKernel = doc.telemetry.map((p: { processes: Record<string, { sysPct: number }> }) => p.processes['chunkserver-1']?.sysPct ?? 0);
      expect(Math.max(...csKernel)).toBeGreaterThan(0);

      // Nothing left behind: no daemon of the bench cluster, no mount.
      const mnt = /gfs up: mounted at (\S+)/.exec(stderr)?.[1];
      expect(mnt).toBeDefined();
      const clusterDir = join(mnt!, '..');
      expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(mnt!);
      const ps = await new Promise<string>((res) => execFile('ps', ['-eo', 'pid=,args='], (_e, so) => res(so)));
      expect(ps.split('\n').filter((l) => l.includes(clusterDir))).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});
