// Cost of chunk access tokens: HMAC sign/verify per op (microbenchmark), then a cluster with
// tokens on vs off (--no-tokens on master and chunkservers), alternating in one run: sequential
// write/read MB/s and the dispatch experiment. Usage: npx tsc -p . && node scripts/token-overhead.mjs
// (env: ORDER=1010 on/off sequence, MIB=128 file size, READS=5000 small reads).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, stopChild } from '../dist/cli/child-process.js';
import { LISTENING_RE } from '../dist/cli/ready-line.js';
import { writeTestFile, dispatchExperiment, removeTestFile } from '../dist/bench/client-bench.js';
import { randomBytes } from "node:crypto";
import { TokenSigner, TokenVerifier } from "../dist/common/chunk-token.js";
{
  const key = randomBytes(32);
  const s = new TokenSigner(key), v = new TokenVerifier(key), v0 = new TokenVerifier(key, 0);
  const t = s.sign("write", 12345, 7);
  const per = (f) => { for (let i = 0; i < 20000; i++) f(i); const n = 200000, t0 = process.hrtime.bigint(); for (let i = 0; i < n; i++) f(i); return (Number(process.hrtime.bigint() - t0) / n).toFixed(0); };
  console.log(`token sign ${per((i) => s.sign("read", i, 7))} ns/op, verify ${per(() => v0.check(t, "read", 12345, 7))} ns/op, verify (cached) ${per(() => v.check(t, "read", 12345, 7))} ns/op`);
}
const MIB = Number(process.env.MIB ?? 128), READS = Number(process.env.READS ?? 5000);
const rows = [];
for (const tokens of (process.env.ORDER ?? "1010").split("").map((x) => x === "1")) {
  const dir = mkdtempSync(join(tmpdir(), 'gfs-tok-'));
  const extra = tokens ? [] : ['--no-tokens'];
  const kids = [];
  try {
    const m = await startChild('master', ['master', '--data', join(dir, 'm'), '--no-http', '--log-file', join(dir, 'm.log'), ...extra], LISTENING_RE, join(dir, 'm.err'));
    kids.push(m);
    for (let i = 1; i <= 3; i++) kids.push(await startChild(`cs${i}`, ['chunkserver', '--data', join(dir, `cs${i}`), '--master', m.ready, '--no-http', '--log-file', join(dir, `cs${i}.log`), '--secret-file', join(dir, 'm', 'cluster.secret'), ...extra], LISTENING_RE, join(dir, `cs${i}.err`)));
    const conn = { master: m.ready, secretFile: join(dir, 'm', 'client.key') };
    const f = await writeTestFile(conn, '/t.bin', MIB);
    const d = await dispatchExperiment(conn, f, READS, 4096);
    await removeTestFile(conn, f).catch(() => undefined);
    const row = { tokens, writeMBps: +f.writeMBps.toFixed(0), readMBps: +f.readMBps.toFixed(0), serialOps: +d.serial.opsPerSec.toFixed(0), serialP99: +d.serial.p99Ms.toFixed(2), parallelOps: +d.parallel.opsPerSec.toFixed(0), parallelP99: +d.parallel.p99Ms.toFixed(1), errors: d.serial.errors + d.parallel.errors };
    rows.push(row);
    console.log(JSON.stringify(row));
  } finally {
    for (const k of kids.reverse()) await stopChild(k);
    rmSync(dir, { recursive: true, force: true });
  }
}
const avg = (t, k) => rows.filter((r) => r.tokens === t).reduce((a, r) => a + r[k], 0) / rows.filter((r) => r.tokens === t).length;
for (const k of ['writeMBps', 'readMBps', 'serialOps', 'parallelOps']) console.log(`${k}: tokens on ${avg(true, k).toFixed(0)}, off ${avg(false, k).toFixed(0)} (${((avg(true, k) / avg(false, k) - 1) * 100).toFixed(1)}%)`);
