// Helpers of the operations tests: Debian packages the tests need (installed when root and
// missing), Prometheus text parsing, HTTP fetches with a deadline.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const isRoot = () => process.getuid?.() === 0;

function installed(pkg: string): boolean {
  return spawnSync('dpkg', ['-s', pkg], { stdio: 'ignore' }).status === 0;
}

/**
 * Makes sure the Debian packages are installed: apt-get install when root and missing.
 * Returns undefined when they are there, else why not (e.g. not root, apt-get failed).
 */
export function ensureDebianPackages(pkgs: string[]): string | undefined {
  const missing = pkgs.filter((p) => !installed(p));
  if (missing.length === 0) return undefined;
  if (!isRoot()) return `missing Debian packages ${missing.join(' ')} and not root`;
  if (!existsSync('/usr/bin/apt-get')) return `missing ${missing.join(' ')} and no apt-get`;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, encoding: 'utf8', timeout: 15 * 60_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 5 * 60_000 });
    r = install();
  }
  if (r.status !== 0) return `apt-get install ${missing.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).slice(-2000)}`;
  return undefined;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the Prometheus text exposition format strictly: every line is blank, a # comment
 * (HELP/TYPE), or `name{labels} value`; throws on anything else.
 */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  const lineRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
  const labelRe = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = lineRe.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not "name{labels} value": ${line}`);
    const labels: Record<string, string> = {};
    if (m[3] !== undefined && m[3] !== '') {
      labelRe.lastIndex = 0;
      let pos = 0;
      while (pos < m[3].length) {
        labelRe.lastIndex = pos;
        const l = labelRe.exec(m[3]);
        if (!l) throw new Error(`line ${i + 1}: bad labels {${m[3]}}`);
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        pos = labelRe.lastIndex;
      }
    }
    const raw = m[4]!;
    // Prometheus parses values with Go's ParseFloat, which takes NaN and Inf in any case;
    // prom-client writes "Nan" (e.g. event-loop lag mean before its first sample).
    const isNan = /^nan$/i.test(raw);
    const value = /^\+?inf$/i.test(raw) ? Infinity : /^-inf$/i.test(raw) ? -Infinity : isNan ? NaN : Number(raw);
    if (Number.isNaN(value) && !isNan) throw new Error(`line ${i + 1}: bad value ${raw}: ${line}`);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `match`. */
export function sum(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  let n = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) n += s.value;
  }
  return n;
}

export async function fetchText(url: string, timeoutMs = 10_000): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

export async function scrape(base: string): Promise<Sample[]> {
  const r = await fetchText(`${base}/metrics`);
  if (r.status !== 200) throw new Error(`${base}/metrics answered ${r.status}`);
  return parsePrometheus(r.body);
}

/** RSS in bytes of a process (from /proc). */
export function rssOf(pid: number): number {
  const status = execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' });
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}
