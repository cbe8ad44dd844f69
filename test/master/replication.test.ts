// The re-replication scheduler on a master with fake chunkservers and a fake clock: queue
// order, strict priority, concurrency bounds, placement, freezing leased chunks, backoff,
// over-replication, rebalancing, goals and fsck.
import { describe, expect, it } from 'vitest';
import { HealthOps } from '../../src/master/health-ops.js';
import { RepairQueue } from '../../src/master/replication-scheduler.js';
import { addServers, makeMaster, ROOT, USER, code, type TestMaster } from './helpers.js';

const CS = 65536;

function hb(id: string) {
  return { serverId: id, addr: '', capacity: 1_000_000, used: 0, load: 0, chunks: [], fullReport: false, corrupt: [] };
}

/** Heartbeats `alive`, lets the clock run past dead-after for everyone else. */
function killOthers(m: TestMaster, alive: string[]): void {
  for (let t = 0; t < 12; t++) {
    m.advance(100);
    for (const id of alive) m.cluster.heartbeat(hb(id));
  }
  m.core.registry.checkStates();
}

/** A file with `n` chunks, each on the given servers, no lease. Returns the handles. */
async function fileOn(m: TestMaster, path: string, placements: string[][]): Promise<number[]> {
  const f = m.ns.create(path, 0o644, ROOT, 0, true);
  const r = await m.chunks.getChunks(f.ino, 0, placements.length * CS, true);
  m.chunks.commitWrite(f.ino, placements.length * CS);
  const handles = r.chunks.map((c) => c.handle);
  handles.forEach((h, i) => {
    m.core.leases.revoke(h);
    m.core.chunks.setReplicas(h, placements[i]!);
    m.core.chunks.noteLength(h, CS);
  });
  return handles;
}

const clonesOf = (m: TestMaster) => m.calls.of('clone');
const addrOf = (i: number) => `127.0.0.1:${7000 + i}`;

describe('RepairQueue', () => {
  it('orders urgent first, then fewest live replicas, then arrival', () => {
    const q = new RepairQueue();
    q.upsert(1, 2, 3);
    q.upsert(2, 1, 3);
    q.upsert(3, 2, 3);
    q.upsert(4, 0, 3);
    q.upsert(5, 1, 3);
    expect([...q.ordered()].map((e) => e.handle)).toEqual([4, 2, 5, 1, 3]);
    q.markUrgent(3);
    expect([...q.ordered()].map((e) => e.handle)).toEqual([3, 4, 2, 5, 1]);
    q.upsert(1, 0, 3); // lost another replica: moves up, keeps arrival order within level
    expect([...q.ordered()].map((e) => e.handle)).toEqual([3, 4, 1, 2, 5]);
    q.remove(4);
    q.remove(3);
    expect([...q.ordered()].map((e) => e.handle)).toEqual([1, 2, 5]);
    expect(q.size).toBe(3);
  });
});

describe('re-replication scheduler', () => {
  it('repairs chunks with one live replica before chunks with two (strict when slots are busy)', async () => {
    const m = makeMaster({ repair: { maxClones: 1 } });
    addServers(m, 5);
    // cs-3 and cs-4 will die. a: one survivor; b: two survivors.
    const b = await fileOn(m, '/b', [['cs-0', 'cs-1', 'cs-3'], ['cs-1', 'cs-2', 'cs-4']]);
    const a = await fileOn(m, '/a', [['cs-0', 'cs-3', 'cs-4'], ['cs-2', 'cs-3', 'cs-4']]);
    killOthers(m, ['cs-0', 'cs-1', 'cs-2']);
    // Each chunk with one survivor needs two copies; the scheduler runs one clone at a time.
    const order: number[] = [];
    for (let i = 0; i < 12; i++) {
      m.core.repair.tick();
      await m.core.repair.idle();
      for (const c of clonesOf(m).slice(order.length)) order.push(c.handle!);
    }
    expect(order.length).toBe(6);
    // The one-survivor chunks get their first copy first; then everything is at two live
    // replicas and goes in arrival order.
    expect(order.slice(0, 2)).toEqual(a);
    expect(order.slice(2)).toEqual([...b, ...a]);
    for (const h of [...a, ...b]) expect(m.core.chunks.replicas(h).filter((id) => m.core.registry.isLive(id))).toHaveLength(3);
    expect(m.cluster.clusterStatus().underReplicated).toBe(0);
  });

  it('respects the cluster-wide and per-server bounds and never picks a holder as target', async () => {
    const m = makeMaster({ repair: { maxClones: 3, maxClonesPerSource: 1, maxClonesPerTarget: 1 } });
    addServers(m, 6);
    m.calls.delayMs = 30;
    const hs = await fileOn(m, '/f', Array.from({ length: 6 }, () => ['cs-0', 'cs-1', 'cs-5']));
    killOthers(m, ['cs-0', 'cs-1', 'cs-2', 'cs-3', 'cs-4']);
    m.core.repair.tick();
    await new Promise((r) => setTimeout(r, 5));
    const running = clonesOf(m);
    // Two alive sources with one slot each: at most 2 clones even though 3 are allowed.
    expect(running).toHaveLength(2);
    expect(new Set(running.map((c) => c.source)).size).toBe(2);
    expect(new Set(running.map((c) => c.addr)).size).toBe(2);
    for (const c of running) {
      expect([addrOf(0), addrOf(1)]).toContain(c.source);
      expect([addrOf(2), addrOf(3), addrOf(4)]).toContain(c.addr);
      expect(c.bytesPerSec).toBe(m.core.repair.opts.cloneBytesPerSec);
      expect(c.timeoutMs).toBeGreaterThan(10_000);
    }
    for (let i = 0; i < 20 && m.cluster.clusterStatus().underReplicated > 0; i++) {
      m.core.repair.tick();
      await m.core.repair.idle();
    }
    for (const h of hs) {
      const reps = m.core.chunks.replicas(h).filter((id) => m.core.registry.isAlive(id));
      expect(new Set(reps).size).toBe(3);
    }
  });

  it('does not copy for suspect servers, only for dead ones', async () => {
    const m = makeMaster();
    addServers(m, 4);
    const [h] = await fileOn(m, '/f', [['cs-0', 'cs-1', 'cs-3']]);
    m.advance(350); // everyone suspect
    m.cluster.heartbeat(hb('cs-0'));
    m.cluster.heartbeat(hb('cs-1'));
    m.cluster.heartbeat(hb('cs-2'));
    m.core.repair.tick();
    expect(clonesOf(m)).toHaveLength(0);
    expect(m.cluster.clusterStatus().underReplicated).toBe(0);
    killOthers(m, ['cs-0', 'cs-1', 'cs-2']);
    m.core.repair.tick();
    await m.core.repair.idle();
    expect(clonesOf(m)).toHaveLength(1);
    expect(clonesOf(m)[0]!.addr).toBe(addrOf(2));
    expect(m.core.chunks.replicas(h!)).toContain('cs-2');
  });

  it('retries a failed clone later with backoff, on another target', async () => {
    const m = makeMaster({ repair: { retryBaseMs: 1_000 } });
    addServers(m, 5);
    const [h] = await fileOn(m, '/f', [['cs-0', 'cs-1', 'cs-4']]);
    killOthers(m, ['cs-0', 'cs-1', 'cs-2', 'cs-3']);
    m.calls.failing.add(addrOf(2));
    m.calls.failing.add(addrOf(3));
    m.core.repair.tick();
    await m.core.repair.idle();
    expect(clonesOf(m)).toHaveLength(1);
    const first = clonesOf(m)[0]!.addr;
    m.core.repair.tick(); // still backing off
    await m.core.repair.idle();
    expect(clonesOf(m)).toHaveLength(1);
    m.calls.failing.clear();
    for (let t = 0; t < 11; t++) {
      m.advance(100);
      for (const id of ['cs-0', 'cs-1', 'cs-2', 'cs-3']) m.cluster.heartbeat(hb(id));
    }
    m.core.repair.tick();
    await m.core.repair.idle();
    expect(clonesOf(m)).toHaveLength(2);
    expect(clonesOf(m)[1]!.addr).not.toBe(first);
    expect(m.core.chunks.replicas(h!).filter((id) => m.core.registry.isAlive(id))).toHaveLength(3);
    expect(m.cluster.clusterStatus().repair!.clonesFailed).toBe(1);
  });

  it('freezes a chunk with a stale lease (version bump) before copying, and waits for an active writer', async () => {
    const m = makeMaster();
    addServers(m, 4);
    const f = m.ns.create('/w', 0o644, ROOT, 0, true);
    const [c] = (await m.chunks.getChunks(f.ino, 0, 1, true)).chunks;
    m.chunks.commitWrite(f.ino, 100);
    const h = c!.handle;
    const holders = m.core.chunks.replicas(h);
    const spare = ['cs-0', 'cs-1', 'cs-2', 'cs-3'].find((id) => !holders.includes(id))!;
    const victim = holders[0]!;
    // The writer holds a fresh valid lease: losing a replica invalidates the lease, so freeze.
    killOthers(m, ['cs-0', 'cs-1', 'cs-2', 'cs-3'].filter((id) => id !== victim));
    m.core.repair.tick();
    await m.core.repair.idle();
    const sv = m.calls.of('setVersion');
    expect(sv.map((x) => x.newVersion)).toEqual([2, 2]);
    expect(m.core.chunks.get(h)!.version).toBe(2);
    expect(m.core.leases.get(h)).toBeUndefined();
    const [cl] = clonesOf(m);
    expect(cl).toMatchObject({ handle: h, version: 2, addr: `127.0.0.1:${7000 + Number(spare.slice(3))}` });
    // A new valid lease just granted on the now 3 replicas: no repair needed, nothing happens.
    await m.chunks.getChunks(f.ino, 0, 1, true);
    m.core.repair.tick();
    await m.core.repair.idle();
    expect(clonesOf(m)).toHaveLength(1);
  });

  it('puts a chunk a client is waiting for first of all', async () => {
    const m = makeMaster({ repair: { maxClones: 1 } });
    addServers(m, 5);
    const one = await fileOn(m, '/one', [['cs-0', 'cs-3', 'cs-4']]);
    const two = await fileOn(m, '/two', [['cs-0', 'cs-1', 'cs-4']]);
    killOthers(m, ['cs-0', 'cs-1', 'cs-2']);
    const f = m.ns.getattr('/two', 0);
    await m.chunks.getChunks(f.ino, 0, 1, false); // a reader waits for /two
    m.core.repair.tick();
    await m.core.repair.idle();
    expect(clonesOf(m)[0]!.handle).toBe(two[0]);
    m.core.repair.tick();
    await m.core.repair.idle();
    expect(clonesOf(m)[1]!.handle).toBe(one[0]);
  });

  it('deletes extra replicas of over-replicated chunks, least free space first', async () => {
    const m = makeMaster();
    addServers(m, 4);
    m.cluster.register({ serverId: 'cs-2', addr: addrOf(2), capacity: 1_000_000, used: 900_000, chunks: [] });
    const [h] = await fileOn(m, '/f', [['cs-0', 'cs-1', 'cs-2', 'cs-3']]);
    m.core.repair.tick();
    expect(m.core.chunks.replicas(h!).sort()).toEqual(['cs-0', 'cs-1', 'cs-3']);
    expect(m.cluster.heartbeat(hb('cs-2')).delete).toEqual([h]);
    expect(m.cluster.clusterStatus().repair!.overReplicatedDeleted).toBe(1);
  });

  it('drops a corrupt replica reported by a heartbeat and re-creates it', async () => {
    const m = makeMaster();
    addServers(m, 4);
    const [h] = await fileOn(m, '/f', [['cs-0', 'cs-1', 'cs-2']]);
    expect(m.cluster.heartbeat({ ...hb('cs-1'), corrupt: [h!] }).delete).toEqual([h]);
    const health = new HealthOps(m.core);
    let r = await health.fsck('/', 0);
    expect(r).toMatchObject({ files: 1, chunks: 1, underReplicated: 1, missing: 0, corrupt: 1 });
    expect(r.findings[0]!.chunks[0]!.corrupt).toEqual(['cs-1']);
    m.core.repair.tick();
    await m.core.repair.idle();
    expect(clonesOf(m)[0]!.addr).toBe(addrOf(3)); // not back onto the server that had it corrupt
    m.core.repair.tick();
    r = await health.fsck('/', 0);
    expect(r).toMatchObject({ underReplicated: 0, missing: 0, corrupt: 0, replicas: 3, findings: [] });
  });

  it('moves chunks to a new empty server until it is within the bound of the average', async () => {
    const m = makeMaster({ repair: { rebalanceMoves: 1 } });
    addServers(m, 3);
    const hs = await fileOn(m, '/f', Array.from({ length: 20 }, () => ['cs-0', 'cs-1', 'cs-2']));
    m.cluster.register({ serverId: 'cs-new', addr: '127.0.0.1:7999', capacity: 1_000_000, used: 0, chunks: [] });
    for (let i = 0; i < 100; i++) {
      m.advance(600);
      for (const id of ['cs-0', 'cs-1', 'cs-2', 'cs-new']) m.cluster.heartbeat(hb(id));
      m.core.repair.tick();
      await m.core.repair.idle();
    }
    const bytes = m.core.repair.serverBytes();
    const avg = (20 * 3 * CS) / 4;
    for (const b of bytes.values()) expect(Math.abs(b - avg)).toBeLessThanOrEqual(0.1 * avg + CS);
    expect(bytes.get('cs-new')!).toBeGreaterThan(0);
    for (const h of hs) expect(m.core.chunks.replicas(h)).toHaveLength(3);
    expect(m.cluster.clusterStatus().repair!.rebalanceMoves).toBeGreaterThan(0);
  });

  it('does nothing while waiting for reports after a restart', async () => {
    const m = makeMaster();
    addServers(m, 4);
    await fileOn(m, '/f', [['cs-0']]);
    m.core.awaitReports(60_000);
    m.core.repair.tick();
    expect(clonesOf(m)).toHaveLength(0);
  });
});

describe('goals and fsck', () => {
  it('sets goals (recursive, inherited by new files) through a mutation record', async () => {
    const m = makeMaster();
    addServers(m, 4);
    const records: unknown[] = [];
    m.core.onMutation((r) => records.push(r));
    const health = new HealthOps(m.core);
    m.ns.mkdir('/d', 0o755, ROOT, 0);
    m.ns.create('/d/old', 0o644, ROOT, 0, true);
    expect(health.setGoal('/d', 2, true, ROOT).changed).toBe(2);
    expect(records.at(-1)).toMatchObject({ op: 'setGoal', goal: 2 });
    expect(m.ns.getattr('/d/old', 0).goal).toBe(2);
    expect(m.ns.create('/d/new', 0o644, ROOT, 0, true).goal).toBe(2);
    expect(health.setGoal('/d', 2, true, ROOT).changed).toBe(0);
    expect(await code(() => health.setGoal('/d', 0, false, ROOT))).toBe('EINVAL');
    expect(await code(() => health.setGoal('/d', 17, false, ROOT))).toBe('EINVAL');
    expect(await code(() => health.setGoal('/d', 1, false, USER))).toBe('EPERM');
    expect(await code(() => health.setGoal('/nope', 1, false, ROOT))).toBe('ENOENT');
  });

  it('reports under-replicated and missing chunks per file, and totals', async () => {
    const m = makeMaster();
    addServers(m, 4);
    await fileOn(m, '/ok', [['cs-0', 'cs-1', 'cs-2']]);
    const under = await fileOn(m, '/under', [['cs-0', 'cs-1', 'cs-2'], ['cs-0', 'cs-3', 'cs-1']]);
    const lost = await fileOn(m, '/lost', [['cs-3']]);
    killOthers(m, ['cs-0', 'cs-1', 'cs-2']);
    const r = await new HealthOps(m.core).fsck('/', 0);
    expect(r).toMatchObject({ files: 3, directories: 1, chunks: 4, underReplicated: 1, missing: 1, corrupt: 0, replicas: 3 + 3 + 2 });
    expect(r.findings.map((f) => f.path)).toEqual(['/lost', '/under']);
    expect(r.findings[1]!.chunks).toMatchObject([{ index: 1, handle: under[1], status: 'under-replicated', live: 2, goal: 3 }]);
    expect(r.findings[0]!.chunks).toMatchObject([{ handle: lost[0], status: 'missing', live: 0 }]);
    const sub = await new HealthOps(m.core).fsck('/ok', 0);
    expect(sub).toMatchObject({ files: 1, chunks: 1, underReplicated: 0, missing: 0, findings: [] });
  });
});
