// Master durability, in-process: log framing, torn tails, damaged records, checkpoint
// fallback, group commit, failing fsync, the data-dir lock, counters and orphans.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GfsError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import { AttrOps } from '../../src/master/attr-ops.js';
import { ChunkOps } from '../../src/master/chunk-ops.js';
import { ClusterOps } from '../../src/master/cluster-ops.js';
import { MasterCore, type MasterConfig } from '../../src/master/core.js';
import { lockDataDir } from '../../src/master/datadir-lock.js';
import { startMaster } from '../../src/master/master.js';
import { NamespaceOps } from '../../src/master/namespace-ops.js';
import {
  encodeHeader,
  encodeRecord,
  LOG_HEADER_BYTES,
  nodeLogIo,
  RECORD_HEADER_BYTES,
  scanRecords,
  type LogIo,
  type SyncMode,
} from '../../src/master/oplog.js';
import { freeOrphans, recover, RecoveryError } from '../../src/master/recovery.js';
import { snapshot } from '../../src/master/snapshot.js';
import { MasterStore } from '../../src/master/store.js';
import { FakeCalls, ROOT } from './helpers.js';

const CFG: MasterConfig = { chunkSize: 64 * 1024, replication: 3, heartbeatMs: 100, suspectAfterMs: 300, deadAfterMs: 1000, gcDelayMs: 0 };

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'gfs-dur-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A master core on a data dir (in-process). "Crash" = drop it without close(). */
async function openDurable(dir: string, o: { syncMode?: SyncMode; checkpointLogBytes?: number; io?: LogIo } = {}) {
  const { store, state } = await MasterStore.open({ dir, chunkSize: CFG.chunkSize, replication: 3, log: silentLogger, ...o });
  const calls = new FakeCalls();
  const core = new MasterCore(CFG, silentLogger, { calls, state });
  core.attachJournal(store);
  const orphans = freeOrphans(core);
  await core.durable();
  const chunks = new ChunkOps(core);
  return { store, core, orphans, ns: new NamespaceOps(core), chunks, attrs: new AttrOps(core, chunks), cluster: new ClusterOps(core, chunks) };
}

const json = (m: { core: MasterCore } | MasterCore) => JSON.stringify(snapshot(('core' in m ? m.core : m).state));

function files(dir: string, re: RegExp): string[] {
  return readdirSync(dir)
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n));
}
const segments = (dir: string) => files(dir, /^oplog-\d+\.log$/);
const checkpoints = (dir: string) => files(dir, /^checkpoint-\d+\.ckpt$/);

async function expectError(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

/** A few hundred namespace records of every kind. */
let round = 0;
async function workload(m: Awaited<ReturnType<typeof openDurable>>, n = 40): Promise<void> {
  const r = round++;
  for (let j = 0; j < n; j++) {
    const i = `${r}-${j}`;
    const k = j;
    m.ns.mkdir(`/d${i}`, 0o755, ROOT, 0o022);
    m.ns.create(`/d${i}/f`, 0o644, ROOT, 0o022, true);
    m.ns.symlink(`/d${i}/f`, `/d${i}/s`, ROOT);
    m.ns.link(`/d${i}/f`, `/d${i}/h`);
    await m.attrs.setattr({ path: `/d${i}/f`, ino: 0, cred: ROOT, valid: 1, mode: 0o600 });
    if (k % 3 === 0) m.ns.rename(`/d${i}/f`, `/d${i}/g`, 0);
    if (k % 4 === 0) m.ns.unlink(`/d${i}/h`);
  }
  await m.core.durable();
}

describe('operation log framing', () => {
  it('round-trips records, including empty-ish and large payloads', () => {
    const payloads = ['{}', JSON.stringify({ op: 'mkdir', name: 'é✓'.repeat(100) }), 'x'.repeat(70_000)].map((s) => Buffer.from(s));
    const buf = Buffer.concat([encodeHeader(7), ...payloads.map(encodeRecord)]);
    const scan = scanRecords(buf);
    expect(scan.torn).toBe(false);
    expect(scan.damagedAt).toBeUndefined();
    expect(scan.goodEnd).toBe(buf.length);
    expect(scan.records.map((r) => r.payload.toString())).toEqual(payloads.map((p) => p.toString()));
    expect(scan.records[0]!.offset).toBe(LOG_HEADER_BYTES);
  });

  it('a fresh data dir, then a restart, gives back the same state', async () => {
    const dir = tmp();
    const a = await openDurable(dir);
    await workload(a);
    const before = json(a);
    await a.store.close();
    const b = await openDurable(dir);
    expect(json(b)).toBe(before);
    expect(b.store.recovery.recordsReplayed).toBeGreaterThan(200);
    await b.store.close();
  });
});

describe('torn and damaged logs', () => {
  /** A log whose last record is one mkdir; returns the states before and after it. */
  async function logWithLastRecord() {
    const dir = tmp();
    const m = await openDurable(dir);
    await workload(m, 10);
    const before = json(m);
    m.ns.mkdir('/last-one', 0o755, ROOT, 0o022);
    await m.core.durable();
    const after = json(m);
    await m.store.close();
    const seg = segments(dir).at(-1)!;
    const recs = scanRecords(readFileSync(seg)).records;
    return { dir, seg, before, after, recs };
  }

  it('a log cut at every byte offset of its last record loads exactly the prefix', async () => {
    const { dir, seg, before, after, recs } = await logWithLastRecord();
    const last = recs.at(-1)!;
    const end = last.offset + RECORD_HEADER_BYTES + last.payload.length;
    expect(readFileSync(seg).length).toBe(end);
    for (let cut = last.offset; cut <= end; cut++) {
      const copy = tmp();
      cpSync(dir, copy, { recursive: true });
      const s = join(copy, seg.slice(dir.length + 1));
      truncateSync(s, cut);
      const r = await recover(copy);
      expect(JSON.stringify(snapshot(r.state!)), `cut at ${cut}`).toBe(cut === end ? after : before);
      if (cut > last.offset && cut < end) {
        expect(r.tornTail).toEqual({ file: s, offset: last.offset, bytes: cut - last.offset });
        expect(readFileSync(s).length).toBe(last.offset); // cut off on disk too
      } else {
        expect(r.tornTail).toBeUndefined();
      }
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('garbage (zeros) after the last record is a torn tail too', async () => {
    const { dir, seg, after } = await logWithLastRecord();
    writeFileSync(seg, Buffer.concat([readFileSync(seg), Buffer.alloc(4096)]));
    const r = await recover(dir);
    expect(JSON.stringify(snapshot(r.state!))).toBe(after);
    expect(r.tornTail?.bytes).toBe(4096);
  });

  it('a flipped byte in a middle record refuses to start, naming file and offset', async () => {
    const { dir, seg, recs } = await logWithLastRecord();
    const victim = recs[Math.floor(recs.length / 2)]!;
    const original = readFileSync(seg);
    for (const at of [victim.offset + RECORD_HEADER_BYTES + 3, victim.offset + 1, victim.offset + 5]) {
      const buf = Buffer.from(original);
      buf[at]! ^= 0x40;
      writeFileSync(seg, buf);
      const err = await expectError(recover(dir));
      expect(err).toBeInstanceOf(RecoveryError);
      expect(err.message).toContain(seg);
      expect(err.message).toContain(`byte offset ${victim.offset}`);
      expect(readFileSync(seg).equals(buf)).toBe(true); // nothing cut
    }
    // The real master refuses too, with the same message.
    const err = await expectError(startMaster({ dataDir: dir, port: 0 }));
    expect(err.message).toMatch(/damaged at byte offset \d+/);
    expect(err.message).toContain(seg);
  });

  it('a damaged record in an older segment refuses to start even if it is the segment tail', async () => {
    const dir = tmp();
    const a = await openDurable(dir);
    await workload(a, 5);
    await a.store.close(); // segment 1
    const b = await openDurable(dir);
    await workload(b, 1);
    await b.store.close(); // segment 2
    const first = segments(dir)[0]!;
    const buf = readFileSync(first);
    truncateSync(first, buf.length - 3);
    const err = await expectError(recover(dir));
    expect(err.message).toContain(first);
    expect(err.message).toContain('byte offset');
  });

  it('a segment torn while being created (short header) becomes a valid empty one', async () => {
    const dir = tmp();
    const a = await openDurable(dir);
    await workload(a, 3);
    const state = json(a);
    await a.store.close();
    writeFileSync(join(dir, 'oplog-00000000000000000002.log'), encodeHeader(2).subarray(0, 10));
    const r = await recover(dir);
    expect(JSON.stringify(snapshot(r.state!))).toBe(state);
    expect(readFileSync(segments(dir).at(-1)!).equals(encodeHeader(2))).toBe(true); // a valid empty segment now
    // ...so the next start continues without a gap in the segment numbers.
    const b = await openDurable(dir);
    b.ns.mkdir('/after', 0o755, ROOT, 0o022);
    await b.core.durable();
    const after = json(b);
    await b.store.close();
    expect(JSON.stringify(snapshot((await recover(dir)).state!))).toBe(after);
  });
});

describe('checkpoints', () => {
  it('are taken when the log passes the bound, while mutations go on, and keep two generations', async () => {
    const dir = tmp();
    const m = await openDurable(dir, { checkpointLogBytes: 8 * 1024 });
    for (let k = 0; k < 6; k++) {
      await workload(m, 20);
      await m.store.idle();
    }
    expect(m.store.checkpoints.taken).toBeGreaterThanOrEqual(3);
    expect(checkpoints(dir).length).toBe(2);
    const final = json(m);
    await m.store.close();
    const r = await recover(dir);
    expect(JSON.stringify(snapshot(r.state!))).toBe(final);
    expect(r.checkpointSeq).toBeGreaterThan(1);
  });

  it('a corrupt newest checkpoint falls back to the previous one plus its logs', async () => {
    const dir = tmp();
    const m = await openDurable(dir, { checkpointLogBytes: 8 * 1024 });
    for (let k = 0; k < 4; k++) {
      await workload(m, 20);
      await m.store.idle();
    }
    await workload(m, 3); // records after the newest checkpoint too
    const final = json(m);
    await m.store.close();
    const [older, newest] = checkpoints(dir);
    const buf = readFileSync(newest!);
    buf[buf.length - 100]! ^= 0x01;
    writeFileSync(newest!, buf);
    const r = await recover(dir);
    expect(r.badCheckpoints.map((b) => b.file)).toEqual([newest]);
    expect(r.badCheckpoints[0]!.error).toMatch(/checksum/);
    expect(r.checkpointFile).toBe(older);
    expect(JSON.stringify(snapshot(r.state!))).toBe(final);
    expect(readdirSync(dir).some((n) => n.endsWith('.ckpt.corrupt'))).toBe(true);
  });

  it('no valid checkpoint at all refuses to start', async () => {
    const dir = tmp();
    const m = await openDurable(dir);
    await workload(m, 2);
    await m.store.close();
    for (const c of checkpoints(dir)) writeFileSync(c, 'nonsense');
    const err = await expectError(recover(dir));
    expect(err.message).toMatch(/no valid checkpoint/);
  });
});

describe('group commit', () => {
  function countingIo(delayMs = 0): LogIo & { syncs: number } {
    const io = {
      syncs: 0,
      write: nodeLogIo.write,
      async fdatasync(fd: number) {
        io.syncs++;
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
        await nodeLogIo.fdatasync(fd);
      },
    };
    return io;
  }

  /** n mutations arriving over `waves` event-loop turns, each caller waiting for durable(). */
  async function concurrent(m: Awaited<ReturnType<typeof openDurable>>, n: number, waves: number): Promise<void> {
    const done: Array<Promise<void>> = [];
    for (let w = 0; w < waves; w++) {
      for (let i = w; i < n; i += waves) {
        m.ns.mkdir(`/c${i}`, 0o755, ROOT, 0o022);
        done.push(m.core.durable());
      }
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(done);
  }

  it('N concurrent mutations share far fewer fsyncs than N; "each" uses one per mutation', async () => {
    const N = 2000;
    const group = countingIo(2);
    const g = await openDurable(tmp(), { io: group });
    await concurrent(g, N, 50);
    expect(g.store.logStats.records).toBe(N);
    expect(group.syncs).toBeLessThan(N / 20);
    await g.store.close();

    const each = countingIo();
    const e = await openDurable(tmp(), { io: each, syncMode: 'each' });
    await concurrent(e, 300, 10);
    expect(each.syncs).toBe(300);
    await e.store.close();
  });

  it('a failing fsync is never acknowledged: callers get EIO and no more mutations are accepted', async () => {
    let fail = false;
    const io: LogIo = {
      write: nodeLogIo.write,
      fdatasync: (fd) => (fail ? Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })) : nodeLogIo.fdatasync(fd)),
    };
    const dir = tmp();
    const m = await openDurable(dir, { io });
    m.ns.mkdir('/ok', 0o755, ROOT, 0o022);
    await m.core.durable();
    fail = true;
    m.ns.mkdir('/lost', 0o755, ROOT, 0o022);
    const err = await expectError(m.core.durable());
    expect(err).toBeInstanceOf(GfsError);
    expect((err as GfsError).code).toBe('EIO');
    expect(() => m.ns.mkdir('/refused', 0o755, ROOT, 0o022)).toThrow(/EIO/);
    expect(m.core.ns.resolveParent('/refused')!.parent.entries!.has('refused')).toBe(false);
  });
});

describe('restart semantics', () => {
  it('inode and chunk handle counters never reuse a number (log replay and checkpoint)', async () => {
    for (const checkpointLogBytes of [undefined, 4096]) {
      const dir = tmp();
      const a = await openDurable(dir, checkpointLogBytes ? { checkpointLogBytes } : {});
      a.cluster.register({ serverId: 'cs-0', addr: '127.0.0.1:7000', capacity: 1e9, used: 0, chunks: [] });
      const f = a.ns.create('/f', 0o644, ROOT, 0o022, true);
      await a.chunks.getChunks(f.ino, 0, 3 * CFG.chunkSize, true);
      const g = a.ns.create('/g', 0o644, ROOT, 0o022, true);
      await a.chunks.getChunks(g.ino, 0, 1, true);
      const maxIno = a.core.ns.nextIno - 1;
      const maxHandle = a.core.chunks.nextHandle - 1;
      a.ns.unlink('/g'); // frees the highest inode and handle
      if (checkpointLogBytes) {
        await a.store.checkpoint();
      }
      await a.core.durable();
      // crash: no close
      const b = await openDurable(dir);
      b.cluster.register({ serverId: 'cs-0', addr: '127.0.0.1:7000', capacity: 1e9, used: 0, chunks: [] });
      const h = b.ns.create('/h', 0o644, ROOT, 0o022, true);
      expect(h.ino).toBeGreaterThan(maxIno);
      const got = await b.chunks.getChunks(h.ino, 0, 1, true);
      expect(got.chunks[0]!.handle).toBeGreaterThan(maxHandle);
      await b.store.close();
    }
  });

  it('files unlinked while open are freed at start-up (open counts are not persistent)', async () => {
    const dir = tmp();
    const a = await openDurable(dir);
    const f = a.ns.create('/open-and-gone', 0o644, ROOT, 0o022, true);
    a.attrs.open('', f.ino, 'client-1');
    a.ns.unlink('/open-and-gone');
    expect(a.core.ns.get(f.ino)?.nlink).toBe(0);
    await a.core.durable();
    const b = await openDurable(dir); // crash + restart
    expect(b.orphans).toEqual([f.ino]);
    expect(b.core.ns.get(f.ino)).toBeUndefined();
    await b.store.close();
    const c = await openDurable(dir);
    expect(c.orphans).toEqual([]);
    await c.store.close();
  });

  it('a second master on the same data dir refuses; a stale lock of a dead pid is taken over', async () => {
    const dir = tmp();
    // A live foreign owner: the parent of this process.
    writeFileSync(join(dir, 'LOCK'), `${process.ppid}\n`);
    expect(() => lockDataDir(dir)).toThrow(/in use by another master \(pid \d+/);
    // A dead one.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(join(dir, 'LOCK'), `${dead}\n`);
    const lock = lockDataDir(dir);
    expect(lock.tookOverFrom).toBe(Number(dead));
    expect(readFileSync(join(dir, 'LOCK'), 'utf8').split('\n')[0]).toBe(String(process.pid));
    lock.release();
    expect(readdirSync(dir)).not.toContain('LOCK');
  });

  it('a data dir keeps its chunk size; an explicit different one is refused', async () => {
    const dir = tmp();
    const a = await startMaster({ dataDir: dir, chunkSize: 128 * 1024 });
    await a.stop();
    const err = await expectError(startMaster({ dataDir: dir, chunkSize: 64 * 1024 }));
    expect(err.message).toMatch(/created with chunk size 131072/);
    const b = await startMaster({ dataDir: dir }); // adopts it
    await b.stop();
  });
});
