// /metrics of the master and the chunkservers parse as Prometheus text and move when a
// workload runs; /healthz and /api/status answer; --no-metrics turns per-request metrics off;
// flags > environment > config file.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GfsClient } from '../../src/client/client.js';
import { applyConfigLayers } from '../../src/cli/config-file.js';
import { startProcCluster, waitFor, type ProcCluster } from '../helpers/proc-cluster.js';
import { fetchText, parsePrometheus, scrape, sum } from './helpers.js';

describe('/metrics, /healthz and /api/status', () => {
  let cluster: ProcCluster;
  let client: GfsClient;

  beforeAll(async () => {
    cluster = await startProcCluster({ chunkservers: 3, heartbeatMs: 300, chunkSize: 1024 * 1024 });
    client = new GfsClient({ master: cluster.master.addr, secretFile: cluster.clientKeyFile });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 3, '3 live chunkservers');
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('every daemon prints its HTTP address and answers /healthz', async () => {
    for (const p of [cluster.master, ...cluster.chunkservers]) {
      expect(p.http, `${p.name} http line`).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const h = await fetchText(`${p.http}/healthz`);
      expect(h.status).toBe(200);
      expect(h.body).toBe('ok\n');
      const page = await fetchText(`${p.http}/`);
      expect(page.type).toContain('text/html');
      expect(page.body).toContain('<title>gfs');
    }
    expect((await fetchText(`${cluster.master.http}/nope`)).status).toBe(404);
  });

  it('parses as Prometheus text and its counters move when files are written and read', async () => {
    const master = cluster.master.http!;
    const servers = cluster.chunkservers.map((c) => c.http!);
    const before = { master: await scrape(master), cs: await Promise.all(servers.map(scrape)) };
    const writtenBefore = before.cs.reduce((n, s) => n + sum(s, 'gfs_bytes_total', { direction: 'written' }), 0);

    // The workload: 8 files of 3 MiB (3 chunks each, 3 replicas) written and read back.
    const files = 8;
    const size = 3 * 1024 * 1024;
    for (let i = 0; i < files; i++) {
      const data = randomBytes(size);
      const attr = await client.create(`/m-${i}`, 0o100644);
      await client.write(attr.ino, 0, data);
      const back = await client.read(attr.ino, 0, size);
      expect(back.equals(data)).toBe(true);
    }

    const after = { master: await scrape(master), cs: await Promise.all(servers.map(scrape)) };
    const count = (s: typeof after.master, method: string) => sum(s, 'gfs_rpc_server_duration_seconds_count', { method });
    expect(count(after.master, 'Create') - count(before.master, 'Create')).toBe(files);
    expect(count(after.master, 'Heartbeat')).toBeGreaterThan(count(before.master, 'Heartbeat'));
    // The cluster gauges come from a status snapshot cached for up to a second: poll for them.
    await waitFor(async () => {
      const m = await scrape(master);
      return sum(m, 'gfs_master_files') >= files && sum(m, 'gfs_master_chunks') >= files * 3;
    }, 'the master gauges to count the new files and chunks', 10_000, 200);
    expect(sum(after.master, 'gfs_master_chunkservers', { state: 'alive' })).toBe(3);
    expect(sum(after.master, 'gfs_master_oplog_records_total')).toBeGreaterThan(sum(before.master, 'gfs_master_oplog_records_total'));
    // Process metrics: RSS, GC, event-loop delay.
    expect(sum(after.master, 'process_resident_memory_bytes')).toBeGreaterThan(10e6);
    // GC pauses are a histogram with one series per GC kind, each appearing after its first
    // collection: the family is always declared, samples only once the master has collected.
    expect((await fetchText(`${master}/metrics`)).body).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m);
    expect(after.master.some((s) => s.name === 'gfs_event_loop_delay_seconds')).toBe(true);
    // Histogram buckets are cumulative and end at +Inf == _count.
    const buckets = after.master.filter((s) => s.name === 'gfs_rpc_server_duration_seconds_bucket' && s.labels.method === 'Create' && s.labels.outcome === 'ok');
    expect(buckets.at(-1)!.labels.le).toBe('+Inf');
    expect(buckets.at(-1)!.value).toBe(count(after.master, 'Create'));
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);

    // Chunkservers: bytes written = 3 replicas of every byte; writes served; chunks stored.
    const writtenAfter = after.cs.reduce((n, s) => n + sum(s, 'gfs_bytes_total', { direction: 'written' }), 0);
    expect(writtenAfter - writtenBefore).toBe(files * size * 3);
    const readAfter = after.cs.reduce((n, s) => n + sum(s, 'gfs_bytes_total', { direction: 'read' }), 0);
    expect(readAfter).toBeGreaterThanOrEqual(files * size);
    // Writes come over the data channel (data.Write at primaries, data.Apply at secondaries).
    const served = (method: string) => after.cs.reduce((n, s) => n + sum(s, 'gfs_rpc_server_duration_seconds_count', { method }), 0);
    expect(served('data.Write')).toBeGreaterThanOrEqual(files * 3);
    expect(served('data.Apply')).toBe(served('data.Write') * 2);
    const chunks = after.cs.reduce((n, s) => n + sum(s, 'gfs_chunkserver_chunks'), 0);
    expect(chunks).toBe(files * 3 * 3);
    for (const s of after.cs) {
      expect(sum(s, 'gfs_chunkserver_registered')).toBe(1);
      expect(s.some((x) => x.name === 'gfs_chunkserver_queue_depth')).toBe(true);
    }

    // The status JSON says the same.
    const st = JSON.parse((await fetchText(`${master}/api/status`)).body);
    expect(st.files).toBeGreaterThanOrEqual(files);
    expect(st.serverStates).toEqual({ alive: 3, suspect: 0, dead: 0 });
    expect(st.opsTotal).toBeGreaterThan(files * 2);
    const cs = JSON.parse((await fetchText(`${servers[0]}/api/status`)).body);
    expect(cs.registered).toBe(true);
    expect(cs.chunks).toBeGreaterThan(0);
  });

  it('--no-metrics leaves out the per-request metrics', async () => {
    const cs = await cluster.addChunkserver(undefined, { extraArgs: ['--no-metrics'] });
    const fresh = await cluster.addChunkserver();
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 5, '5 live chunkservers');
    const off = await scrape(cs.http!);
    expect(sum(off, 'gfs_metrics_per_request_enabled')).toBe(0);
    expect(off.some((s) => s.name.startsWith('gfs_rpc_server_duration_seconds'))).toBe(false);
    expect(sum(off, 'gfs_chunkserver_registered')).toBe(1); // the gauges stay
    expect(sum(await scrape(fresh.http!), 'gfs_metrics_per_request_enabled')).toBe(1);
  });
});

describe('settings: flags > GFS_* environment > --config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gfs-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function command(): Command {
    const c = new Command('master');
    c.option('--data <dir>', 'd', './default')
      .option('--http-port <port>', 'p', '0')
      .option('--log-level <level>', 'l')
      .option('--heartbeat-ms <ms>', 'h')
      .option('--no-metrics', 'm')
      .option('--config <file>', 'c')
      .action(() => undefined);
    c.exitOverride();
    return c;
  }

  it('takes each option from the highest layer that has it', () => {
    const file = join(dir, 'gfs.json');
    writeFileSync(file, JSON.stringify({ data: '/from-file', heartbeatMs: 111, 'log-level': 'warn', master: { 'http-port': 9999, metrics: false } }));
    const c = command();
    c.parse(['--config', file, '--data', '/from-flag'], { from: 'user' });
    applyConfigLayers(c, { GFS_LOG_LEVEL: 'debug' });
    expect(c.opts()).toMatchObject({ data: '/from-flag', logLevel: 'debug', heartbeatMs: '111', httpPort: '9999', metrics: false });
    expect(c.getOptionValueSource('data')).toBe('cli');
    expect(c.getOptionValueSource('logLevel')).toBe('env');
    expect(c.getOptionValueSource('httpPort')).toBe('config');

    const d = command();
    d.parse([], { from: 'user' });
    applyConfigLayers(d, { GFS_CONFIG: file, GFS_METRICS: '1', GFS_DATA: '/from-env' });
    expect(d.opts()).toMatchObject({ data: '/from-env', metrics: true, httpPort: '9999' });

    const e = command();
    e.parse([], { from: 'user' });
    applyConfigLayers(e, {});
    expect(e.opts()).toMatchObject({ data: './default', httpPort: '0', metrics: true });
  });

  it('refuses a config file that is not a JSON object, naming it', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ nope');
    const c = command();
    c.parse(['--config', bad], { from: 'user' });
    expect(() => applyConfigLayers(c, {})).toThrow(/bad\.json is not valid JSON/);
    expect(() => parsePrometheus('ok 1\nnot a metric line!\n')).toThrow(/line 2/);
  });
});
