// Issue 5 acceptance: self-healing with real processes. Failure detection, re-replication
// (priority order), stale and orphaned replicas of a returning server, the scrubber's corrupt
// reports, a network cut (chunkservers in their own network namespaces), `gfs fsck`.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_BASE } from '../../src/chunkserver/chunk-meta.js';
import { GfsClient } from '../../src/client/client.js';
import { CHANNEL_OPTIONS } from '../../src/common/grpc-options.js';
import { proto } from '../../src/common/proto.js';
import type {
  ChunkInfo__Output,
  ChunkServerStatusReply__Output,
  ClusterStatusReply__Output,
  FsckReply__Output,
  GetChunksReply__Output,
  ReadReply__Output,
} from '../../src/generated/gfs/index.js';
import { CLI, startProcCluster, stubChannel, waitFor, type Proc, type ProcCluster } from '../helpers/proc-cluster.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Fast failure detection for tests: heartbeats 200 ms, suspect 600 ms, dead 2 s. */
const FAST = ['--suspect-after-ms', '600', '--dead-after-ms', '2000'];

function unary<T>(client: grpc.Client, method: string, req: object): Promise<T> {
  return new Promise((res, rej) =>
    (client as unknown as Record<string, Function>)[method]!.call(client, req, { deadline: Date.now() + 10_000 }, (err: Error | null, r: T) =>
      err ? rej(err) : res(r),
    ),
  );
}

function masterStub(addr: string) {
  return new (proto().gfs.Master)(addr, ...stubChannel(addr));
}

function csStub(addr: string) {
  return new (proto().gfs.ChunkServer)(addr, ...stubChannel(addr));
}

async function getChunks(master: string, ino: number, length: number): Promise<ChunkInfo__Output[]> {
  const m = masterStub(master);
  try {
    return (await unary<GetChunksReply__Output>(m, 'GetChunks', { ino, offset: 0, length: Math.max(1, length) })).chunks;
  } finally {
    m.close();
  }
}

async function csStatus(addr: string): Promise<ChunkServerStatusReply__Output> {
  const c = csStub(addr);
  try {
    return await unary<ChunkServerStatusReply__Output>(c, 'Status', {});
  } finally {
    c.close();
  }
}

/** Reads a whole chunk straight from one chunkserver at a version (no client, no master). */
function readChunk(addr: string, handle: number, version: number, length: number, token?: Buffer): Promise<Buffer> {
  const c = csStub(addr);
  return new Promise<Buffer>((res, rej) => {
    const parts: Buffer[] = [];
    const call = c.Read({ handle, version, offset: 0, length, token }, { deadline: Date.now() + 10_000 });
    call.on('data', (m: ReadReply__Output) => parts.push(m.data));
    call.on('error', (e) => rej(e));
    call.on('end', () => res(Buffer.concat(parts)));
  }).finally(() => c.close());
}

/** The client key of the cluster the CLI talks to (set by the suite that starts it). */
let cliSecretFile: string | undefined;

async function cli(args: string[], master: string): Promise<{ code: number; stdout: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args, '--master', master], { timeout: 30_000, env: { ...process.env, GFS_SECRET_FILE: cliSecretFile } });
    return { code: 0, stdout: r.stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '' };
  }
}

const dataDirOf = (p: Proc) => p.args[p.args.indexOf('--data') + 1]!;

async function serverIdOf(client: GfsClient, p: Proc): Promise<string> {
  return waitFor(async () => (await client.clusterStatus()).servers.find((s) => s.addr === p.addr)?.serverId, `id of ${p.name}`);
}

async function stateOf(client: GfsClient, id: string): Promise<string | undefined> {
  return (await client.clusterStatus()).servers.find((s) => s.serverId === id)?.state;
}

/** Every live chunkserver holds on disk exactly the chunks the master counts for it. */
async function countsAgree(s: ClusterStatusReply__Output): Promise<boolean> {
  for (const v of s.servers) {
    if (v.state !== 'alive') continue;
    const st = await csStatus(v.addr);
    if (Number(st.chunks) !== Number(v.chunks)) return false;
  }
  return true;
}

const healthy = (f: FsckReply__Output) => f.underReplicated === 0 && f.missing === 0 && f.overReplicated === 0 && f.corrupt === 0;

/** Chunk file of `handle` under a chunkserver data dir (see ChunkStore). */
function chunkFile(dir: string, handle: number): string {
  return join(dir, 'chunks', (handle % 256).toString(16).padStart(2, '0'), `${handle}.chunk`);
}

/** The master's JSON log lines. */
function masterLog(c: ProcCluster): Array<Record<string, unknown>> {
  return readFileSync(join(c.dir, 'master.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Checks every file against its expected bytes, and every listed replica straight from its server. */
async function verifyFiles(master: string, client: GfsClient, files: Map<string, Buffer>, chunkSize: number): Promise<void> {
  for (const [path, data] of files) {
    const attr = await client.getattr(path);
    expect(Number(attr.size)).toBe(data.length);
    // Rebalancing may still be moving chunks (and bumping the version of a chunk it freezes,
    // or deleting the source of a finished move): a replica answering ESTALE, or ENOENT for a
    // chunk just moved away, means our view is old, so look the chunks up again, as a client
    // would. A replica the master keeps listing but the server lacks still fails, after the
    // retries; any other difference fails at once.
    for (let attempt = 1; ; attempt++) {
      try {
        for (const ch of await getChunks(master, attr.ino, data.length)) {
          const idx = Number(ch.index);
          const want = data.subarray(idx * chunkSize, Math.min(data.length, (idx + 1) * chunkSize));
          expect(ch.replicas.length).toBeGreaterThan(0);
          for (const r of ch.replicas) {
            const got = await readChunk(r.addr, Number(ch.handle), Number(ch.version), chunkSize, ch.token);
            if (sha(got) !== sha(want)) expect.fail(`${path} chunk ${idx} on ${r.serverId} differs`);
          }
        }
        break;
      } catch (err) {
        if (attempt >= 20 || !/ESTALE|not on this server/.test(String((err as Error)?.message))) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const back = await client.readFile(path);
    if (sha(back) !== sha(data)) expect.fail(`${path} reads back different`);
  }
}

describe('SIGKILL of a chunkserver during a write workload (4 chunkservers, goal 3)', () => {
  let c: ProcCluster;
  let client: GfsClient;
  beforeAll(async () => {
    c = await startProcCluster({ chunkservers: 4, chunkSize: MiB, heartbeatMs: 200, masterArgs: FAST });
    client = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 4, '4 live chunkservers');
  });
  afterAll(async () => {
    await client?.close();
    await c?.stop();
  });

  it('re-replicates every chunk to 3 live replicas; the returning server loses its stale and orphaned replicas', async () => {
    const files = new Map<string, Buffer>();
    // Files that will be deleted while the victim is down: their chunks on it become orphans.
    const doomed: number[] = [];
    await client.mkdir('/w', 0o755);
    for (let i = 0; i < 3; i++) {
      const attr = await client.writeFile(`/pre-${i}`, randomBytes(2 * MiB));
      for (const ch of await getChunks(c.master.addr, attr.ino, 2 * MiB)) doomed.push(Number(ch.handle));
    }
    const victim = c.chunkservers[0]!;
    const victimId = await serverIdOf(client, victim);
    const victimDir = dataDirOf(victim);
    const orphansBefore = doomed.filter((h) => existsSync(chunkFile(victimDir, h))).length;
    expect(orphansBefore).toBeGreaterThan(0); // goal 3 of 4 servers: it holds some of them

    let done = 0;
    let killedAt = 0;
    const writer = async (w: number) => {
      for (let i = w; i < 24; i += 4) {
        const data = randomBytes(3 * MiB - i * 4096);
        await client.writeFile(`/w/f${i}`, data);
        files.set(`/w/f${i}`, data);
        if (++done === 6 && !killedAt) {
          killedAt = performance.now();
          await c.kill(victim, 'SIGKILL');
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(writer));
    expect(files.size).toBe(24);
    for (let i = 0; i < 3; i++) await client.unlink(`/pre-${i}`);

    await waitFor(async () => (await stateOf(client, victimId)) === 'dead', 'victim declared dead', 15_000);
    const deadAt = performance.now();
    const f = await waitFor(async () => {
      const r = await client.fsck('/');
      return healthy(r) && r.repairBacklog === 0 ? r : undefined;
    }, 'every chunk back at 3 live replicas', 60_000, 100);
    const fullAt = performance.now();
    console.log(
      `[self-healing] SIGKILL -> every chunk at 3 replicas: ${((fullAt - killedAt) / 1000).toFixed(1)} s ` +
        `(dead after ${((deadAt - killedAt) / 1000).toFixed(1)} s, repair ${((fullAt - deadAt) / 1000).toFixed(1)} s, ${f.chunks} chunks)`,
    );
    expect(f.files).toBe(24);
    // Every chunk: 3 distinct live replicas, none on the dead server.
    for (const [path] of files) {
      const attr = await client.getattr(path);
      for (const ch of await getChunks(c.master.addr, attr.ino, Number(attr.size))) {
        const ids = ch.replicas.map((r) => r.serverId);
        expect(new Set(ids).size, `${path} chunk ${ch.index}`).toBe(3);
        expect(ids).not.toContain(victimId);
      }
    }
    await verifyFiles(c.master.addr, client, files, MiB);

    // The victim comes back on its old data directory.
    const back = await c.addChunkserver(victimDir);
    await waitFor(async () => (await stateOf(client, victimId)) === 'alive', 'victim alive again', 20_000);
    await waitFor(async () => {
      const [s, r] = await Promise.all([client.clusterStatus(), client.fsck('/')]);
      return healthy(r) && r.replicas === 3 * r.chunks && (await countsAgree(s)) && doomed.every((h) => !existsSync(chunkFile(victimDir, h)));
    }, 'stale, orphaned and extra replicas deleted', 30_000, 200);
    const s = await client.clusterStatus();
    console.log(`[self-healing] after the victim returned: stale deleted ${s.repair!.staleDeleted}, extra deleted ${s.repair!.overReplicatedDeleted}, victim holds ${s.servers.find((v) => v.serverId === victimId)!.chunks} chunks`);
    expect(back.addr).toBeTruthy();
    // Rebalancing: the emptied server gradually receives chunks until it is near the average.
    const t0 = performance.now();
    await waitFor(async () => {
      const st = await client.clusterStatus();
      const alive = st.servers.filter((v) => v.state === 'alive');
      const avg = alive.reduce((n, v) => n + Number(v.chunks), 0) / alive.length;
      const mine = Number(alive.find((v) => v.serverId === victimId)?.chunks ?? 0);
      return mine >= 0.85 * avg && st.repair!.rebalanceInFlight === 0 && (await countsAgree(st));
    }, 'rebalanced onto the returning server', 40_000, 200);
    const rb = await client.clusterStatus();
    console.log(
      `[self-healing] rebalanced in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${rb.repair!.rebalanceMoves} moves; chunks per server ${rb.servers.map((v) => v.chunks).join(' ')}`,
    );
    expect(rb.repair!.rebalanceMoves).toBeGreaterThan(0);
    let lastFsck: FsckReply__Output | undefined;
    await waitFor(async () => healthy((lastFsck = await client.fsck('/'))), 'healthy after rebalancing', 10_000).catch((err: Error) => {
      // Which count stayed off says which part of the repair did not finish.
      const f = lastFsck;
      throw new Error(`${err.message} (last fsck: under ${f?.underReplicated}, missing ${f?.missing}, over ${f?.overReplicated}, corrupt ${f?.corrupt})`);
    });
    // Nothing is served from a stale copy: every listed replica (the victim's included) holds
    // the current bytes at the current version, and reads through a fresh client match.
    const fresh = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    try {
      await verifyFiles(c.master.addr, fresh, files, MiB);
    } finally {
      await fresh.close();
    }
    expect(s.eventCounts['dead']).toBeGreaterThanOrEqual(1);
    expect(s.recentEvents.some((e) => e.serverId === victimId && e.to === 'dead')).toBe(true);
  });
});

describe('two of four chunkservers killed: priority, fsck, goals', () => {
  let c: ProcCluster;
  let client: GfsClient;
  beforeAll(async () => {
    c = await startProcCluster({
      chunkservers: 4,
      chunkSize: MiB,
      heartbeatMs: 200,
      // Slow clones, two at a time, no rebalancing: the order is observable.
      masterArgs: [...FAST, '--max-clones', '2', '--clone-bytes-per-sec', String(2 * MiB), '--rebalance-moves', '0'],
    });
    client = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    cliSecretFile = c.clientKeyFile;
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 4, '4 live chunkservers');
  });
  afterAll(async () => {
    await client?.close();
    await c?.stop();
  });

  it('repairs one-replica chunks first, and fsck reports exactly the damage until it is repaired', async () => {
    const m = c.master.addr;
    for (const d of ['/g3', '/g1', '/g4']) await client.mkdir(d, 0o755);
    expect((await cli(['setgoal', '1', '/g1'], m)).code).toBe(0);
    const sg = await cli(['setgoal', '4', '/g4'], m);
    expect(sg.stdout).toContain('goal 4');
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 12; i++) files.set(`/g3/f${i}`, randomBytes(MiB));
    files.set('/g1/x', randomBytes(6 * MiB));
    files.set('/g4/y', randomBytes(2 * MiB));
    for (const [p, d] of files) await client.writeFile(p, d);
    expect((await client.getattr('/g1/x')).goal).toBe(1);
    // Where every chunk is.
    const where = new Map<string, ChunkInfo__Output[]>();
    for (const [p, d] of files) where.set(p, await getChunks(m, (await client.getattr(p)).ino, d.length));
    let ok = await cli(['fsck', '--json'], m);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ healthy: true, files: 14, chunks: 12 + 6 + 2, underReplicated: 0, missing: 0 });

    const [a, b] = [c.chunkservers[0]!, c.chunkservers[1]!];
    const [ida, idb] = [await serverIdOf(client, a), await serverIdOf(client, b)];
    const gone = new Set([ida, idb]);
    await Promise.all([c.kill(a), c.kill(b)]);
    // A fresh server joins before the two are declared dead: chunks with two survivors can
    // be repaired too, so the order is a real choice of the scheduler.
    const e = await c.addChunkserver();
    await waitFor(async () => (await stateOf(client, ida)) === 'dead' && (await stateOf(client, idb)) === 'dead', 'both dead', 15_000);

    const survivors = (ch: ChunkInfo__Output) => ch.replicas.filter((r) => !gone.has(r.serverId)).length;
    const g3 = [...where.entries()].filter(([p]) => p.startsWith('/g3/')).flatMap(([, chs]) => chs);
    const g1Lost = where.get('/g1/x')!.filter((ch) => survivors(ch) === 0);
    const g4 = where.get('/g4/y')!;
    expect(g3.some((ch) => survivors(ch) === 1)).toBe(true);
    expect(g3.some((ch) => survivors(ch) === 2)).toBe(true);

    // Repaired: goal-3 chunks at 3, goal-4 chunks at 3 (only 3 servers alive), nothing running.
    await waitFor(async () => {
      const s = await client.clusterStatus();
      if (s.repair!.inFlight > 0) return false;
      const r = await client.fsck('/');
      return r.underReplicated === g4.length && r.missing === g1Lost.length;
    }, 'goal-3 chunks repaired', 60_000, 200);

    // The order: after the second server was declared dead, every chunk with one surviving
    // replica started its first copy before any chunk with two.
    const lines = masterLog(c);
    const lastDead = lines.reduce((at, l, i) => (l.msg === 'chunkserver state' && l.to === 'dead' ? i : at), -1);
    expect(lastDead).toBeGreaterThan(0);
    const firstStart = new Map<number, { i: number; live: number }>();
    lines.forEach((l, i) => {
      if (i > lastDead && l.msg === 'repair clone started' && !firstStart.has(l.handle as number)) {
        firstStart.set(l.handle as number, { i, live: l.live as number });
      }
    });
    const ones = [...firstStart.values()].filter((x) => x.live === 1);
    const twos = [...firstStart.values()].filter((x) => x.live === 2);
    console.log(`[self-healing] after both deaths: ${ones.length} one-replica chunks, ${twos.length} two-replica chunks started repair`);
    expect(ones.length).toBeGreaterThan(0);
    expect(twos.length).toBeGreaterThan(0);
    expect(Math.max(...ones.map((x) => x.i))).toBeLessThan(Math.min(...twos.map((x) => x.i)));

    // fsck names exactly the damage: the goal-4 chunks (3 of 4 possible) and the goal-1 chunks
    // whose only replica was on a killed server; exit status 1.
    const bad = await cli(['fsck', '--json'], m);
    expect(bad.code).toBe(1);
    const r = JSON.parse(bad.stdout) as FsckReply__Output & { healthy: boolean };
    expect(r).toMatchObject({ healthy: false, files: 14, underReplicated: g4.length, missing: g1Lost.length, corrupt: 0 });
    const found = r.findings.flatMap((f) => f.chunks.map((ch) => `${f.path}#${ch.handle}:${ch.status}`)).sort();
    const expected = [
      ...g4.map((ch) => `/g4/y#${ch.handle}:under-replicated`),
      ...g1Lost.map((ch) => `/g1/x#${ch.handle}:missing`),
    ].sort();
    expect(found).toEqual(expected);
    const text = await cli(['fsck', '/g3'], m);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('HEALTHY');
    const status = await cli(['status'], m);
    expect(status.stdout).toMatch(/repair backlog \d+/);
    expect(status.stdout).toContain('dead');

    // The two come back: the lost chunks return, extra replicas go, fsck is clean again.
    await c.addChunkserver(dataDirOf(a));
    await c.addChunkserver(dataDirOf(b));
    await waitFor(async () => {
      const [s, f] = await Promise.all([client.clusterStatus(), client.fsck('/')]);
      return healthy(f) && s.repair!.inFlight === 0 && (await countsAgree(s));
    }, 'healthy after the two returned', 40_000, 200);
    ok = await cli(['fsck'], m);
    expect(ok.code).toBe(0);
    await verifyFiles(m, client, files, MiB);
    expect(e.addr).toBeTruthy();
  });
});

describe('scrubber finds a corrupt block of an idle replica', () => {
  let c: ProcCluster;
  let client: GfsClient;
  beforeAll(async () => {
    c = await startProcCluster({
      chunkservers: 4,
      chunkSize: MiB,
      heartbeatMs: 200,
      masterArgs: FAST,
      chunkserverArgs: ['--scrub-bytes-per-sec', String(64 * MiB), '--scrub-idle-ms', '500', '--scrub-pass-pause-ms', '300'],
    });
    client = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 4, '4 live chunkservers');
  });
  afterAll(async () => {
    await client?.close();
    await c?.stop();
  });

  it('re-creates the bad replica from a good one without any client read', async () => {
    const data = randomBytes(MiB);
    const attr = await client.writeFile('/idle.bin', data);
    const [ch] = await getChunks(c.master.addr, attr.ino, MiB);
    const handle = Number(ch!.handle);
    const victim = c.chunkservers.find((p) => p.addr === ch!.replicas[0]!.addr)!;
    const file = chunkFile(dataDirOf(victim), handle);
    // Flip one byte in block 5 of that replica's chunk file.
    const fd = openSync(file, 'r+');
    const pos = DATA_BASE + 5 * 65536 + 123;
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, pos);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, pos);
    closeSync(fd);
    const victimId = ch!.replicas[0]!.serverId;
    await waitFor(async () => (await client.clusterStatus()).repair!.corruptReported >= 1, 'corrupt replica reported', 30_000, 100);
    await waitFor(async () => {
      const f = await client.fsck('/');
      const [now] = await getChunks(c.master.addr, attr.ino, MiB);
      return healthy(f) && now!.replicas.length === 3;
    }, 'back at 3 good replicas', 30_000, 100);
    const [now] = await getChunks(c.master.addr, attr.ino, MiB);
    expect(now!.replicas.map((r) => r.serverId)).not.toContain(victimId);
    for (const r of now!.replicas) expect(sha(await readChunk(r.addr, handle, Number(now!.version), MiB, now!.token))).toBe(sha(data));
    const s = await client.clusterStatus();
    expect(s.repair!.clonesSucceeded).toBeGreaterThanOrEqual(1);
  });
});

/** `ip` with arguments; throws with its stderr on failure. */
async function ip(...args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 });
}

describe('network cut, not a crash (chunkservers in network namespaces)', () => {
  const tag = String(process.pid % 10000);
  const bridge = `gfsb${tag}`;
  const hostIf = (i: number) => `gfsv${tag}h${i}`;
  const ns = (i: number) => `gfsns${tag}-${i}`;
  const addr = (i: number) => `10.77.${(process.pid % 200) + 20}.${10 + i}`;
  const gw = `10.77.${(process.pid % 200) + 20}.1`;
  const N = 4;
  let c: ProcCluster | undefined;
  let client: GfsClient | undefined;
  const created = { bridge: false, ns: [] as number[] };

  beforeAll(async () => {
    expect(process.getuid?.(), 'network namespaces need root').toBe(0);
    await ip('link', 'add', bridge, 'type', 'bridge');
    created.bridge = true;
    await ip('addr', 'add', `${gw}/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (let i = 0; i < N; i++) {
      await ip('netns', 'add', ns(i));
      created.ns.push(i);
      await ip('link', 'add', hostIf(i), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(i));
      await ip('link', 'set', hostIf(i), 'master', bridge);
      await ip('link', 'set', hostIf(i), 'up');
      await ip('-n', ns(i), 'addr', 'add', `${addr(i)}/24`, 'dev', 'eth0');
      await ip('-n', ns(i), 'link', 'set', 'eth0', 'up');
      await ip('-n', ns(i), 'link', 'set', 'lo', 'up');
    }
    c = await startProcCluster({ chunkservers: 0, chunkSize: MiB, heartbeatMs: 200, masterArgs: [...FAST, '--host', '0.0.0.0'] });
    const port = c.master.addr.slice(c.master.addr.lastIndexOf(':') + 1);
    for (let i = 0; i < N; i++) {
      c.chunkservers.push(await c.addChunkserver(undefined, { prefix: ['ip', 'netns', 'exec', ns(i)], host: addr(i), master: `${gw}:${port}` }));
    }
    client = new GfsClient({ master: `127.0.0.1:${port}`, secretFile: c.clientKeyFile });
    await waitFor(async () => (await client!.clusterStatus()).servers.filter((s) => s.state === 'alive').length === N, `${N} live chunkservers in namespaces`);
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    await c?.stop();
    for (const i of created.ns) {
      await ip('link', 'del', hostIf(i)).catch(() => undefined);
      await ip('netns', 'del', ns(i)).catch(() => undefined);
    }
    if (created.bridge) await ip('link', 'del', bridge).catch(() => undefined);
  });

  it('re-replicates around a cut-off server, and deletes its stale replicas when it reconnects', async () => {
    const cl = client!;
    const m = `127.0.0.1:${c!.master.addr.slice(c!.master.addr.lastIndexOf(':') + 1)}`;
    const files = new Map<string, Buffer>();
    const servers = (await cl.clusterStatus()).servers;
    expect(servers.every((s) => s.addr.startsWith('10.77.'))).toBe(true);
    const cutId = servers.find((s) => s.addr.startsWith(`${addr(0)}:`))!.serverId;
    let done = 0;
    let cutAt = 0;
    const writer = async (w: number) => {
      for (let i = w; i < 16; i += 4) {
        const data = randomBytes(2 * MiB + i * 1000);
        await cl.writeFile(`/n${i}`, data);
        files.set(`/n${i}`, data);
        if (++done === 4 && !cutAt) {
          cutAt = performance.now();
          await ip('link', 'set', hostIf(0), 'down'); // the process keeps running, unreachable
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(writer));
    await waitFor(async () => (await stateOf(cl, cutId)) === 'dead', 'cut-off server declared dead', 20_000);
    await waitFor(async () => {
      const f = await cl.fsck('/');
      return healthy(f) && f.repairBacklog === 0;
    }, 'every chunk back at 3 live replicas', 60_000, 100);
    console.log(`[self-healing] network cut -> every chunk at 3 replicas: ${((performance.now() - cutAt) / 1000).toFixed(1)} s`);
    for (const [p, d] of files) {
      for (const ch of await getChunks(m, (await cl.getattr(p)).ino, d.length)) {
        expect(ch.replicas.map((r) => r.serverId)).not.toContain(cutId);
        expect(ch.replicas).toHaveLength(3);
      }
    }
    // Overwrite one file while it is cut off: its old copy there is now stale for sure.
    const changed = randomBytes(2 * MiB);
    await cl.writeFile('/n0', changed);
    files.set('/n0', changed);

    await ip('link', 'set', hostIf(0), 'up');
    await waitFor(async () => (await stateOf(cl, cutId)) === 'alive', 'cut-off server back', 30_000);
    await waitFor(async () => {
      const [s, f] = await Promise.all([cl.clusterStatus(), cl.fsck('/')]);
      return healthy(f) && f.replicas === 3 * f.chunks && (await countsAgree(s));
    }, 'stale and extra replicas of the returning server deleted', 40_000, 200);
    const s = await cl.clusterStatus();
    expect(s.repair!.staleDeleted).toBeGreaterThanOrEqual(1);
    await verifyFiles(m, cl, files, MiB);
  });
});
