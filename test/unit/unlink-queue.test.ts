import { describe, expect, it } from 'vitest';
import { MAX_UNLINKS_PENDING, UNLINK_BATCH_MAX, UNLINK_BATCHES_IN_FLIGHT, UnlinkQueue, type SendUnlinks } from '../../src/fuse/unlink-queue.js';
import { silentLogger } from '../../src/common/logger.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const p = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { p, resolve, reject };
}

type Entry = { parent: number; name: string };

/** A master stand-in: each batch call waits until the test answers it. */
function fakeMaster() {
  const calls: Array<{ entries: Entry[]; answer: (r: Array<Error | undefined>) => void; fail: (e: Error) => void }> = [];
  const send: SendUnlinks = (entries) => {
    const d = deferred<Array<Error | undefined>>();
    calls.push({ entries, answer: d.resolve, fail: d.reject });
    return d.p;
  };
  const ok = (i: number) => calls[i]!.answer(calls[i]!.entries.map(() => undefined));
  return { calls, send, ok };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('UnlinkQueue', () => {
  it('sends each name with the inode it held here (the master leaves a name made again alone)', async () => {
    const m = fakeMaster();
    const q = new UnlinkQueue(m.send, silentLogger);
    await q.start(3, 'c', 42, () => undefined);
    await turn();
    expect(m.calls[0]!.entries).toEqual([{ parent: 3, name: 'c', ino: 42 }]);
    m.ok(0);
  });

  it('names that arrive while calls are under way go together in the next call', async () => {
    const m = fakeMaster();
    const q = new UnlinkQueue(m.send, silentLogger);
    await q.start(1, 'a', 0, () => undefined);
    await turn();
    await q.start(1, 'b', 0, () => undefined);
    await turn();
    expect(m.calls.map((c) => c.entries.map((e) => e.name))).toEqual([['a'], ['b']]);
    for (let i = 0; i < 10; i++) await q.start(2, `n${i}`, 0, () => undefined);
    await turn();
    expect(m.calls).toHaveLength(UNLINK_BATCHES_IN_FLIGHT); // no room: the ten wait together
    m.ok(0);
    await turn();
    await turn();
    expect(m.calls).toHaveLength(3);
    expect(m.calls[2]!.entries).toEqual(Array.from({ length: 10 }, (_, i) => ({ parent: 2, name: `n${i}`, ino: 0 })));
    m.ok(1);
    m.ok(2);
    await q.all();
    expect(q.pending).toBe(0);
  });

  it('settled() waits for the unlinks of the directories named, not of others', async () => {
    const m = fakeMaster();
    const q = new UnlinkQueue(m.send, silentLogger);
    await q.start(1, 'x', 0, () => undefined);
    await turn();
    await q.start(2, 'y', 0, () => undefined);
    await turn();
    let one = false;
    const s1 = q.settled([1]).then(() => (one = true));
    m.ok(1);
    await q.settled([2]);
    expect(one).toBe(false);
    m.ok(0);
    await s1;
    expect(q.pending).toBe(0);
  });

  it('a refused unlink calls its onFail only; a failed call fails each of its names', async () => {
    const m = fakeMaster();
    const q = new UnlinkQueue(m.send, silentLogger);
    const failed: string[] = [];
    for (const n of ['a', 'b', 'c']) await q.start(1, n, 0, () => failed.push(n));
    await turn();
    m.calls[0]!.answer([undefined, new Error('ENOENT: gone'), undefined]);
    await q.settled([1]);
    expect(failed).toEqual(['b']);
    await q.start(1, 'd', 0, () => failed.push('d'));
    await turn();
    m.calls[1]!.fail(new Error('EHOSTDOWN: master unreachable'));
    await q.all();
    expect(failed).toEqual(['b', 'd']);
    expect(q.failures).toBe(2);
  });

  it('calls carry at most UNLINK_BATCH_MAX names, and start() waits once MAX_UNLINKS_PENDING are held', async () => {
    const m = fakeMaster();
    const q = new UnlinkQueue(m.send, silentLogger);
    for (let i = 0; i < MAX_UNLINKS_PENDING; i++) await q.start(1, `n${i}`, 0, () => undefined);
    let queued = false;
    const last = q.start(1, 'last', 0, () => undefined).then(() => (queued = true));
    for (let i = 0; i < 5; i++) await turn();
    expect(queued).toBe(false);
    expect(q.pending).toBe(MAX_UNLINKS_PENDING + 1); // the waiting one counts: its name is gone from the cache
    expect(m.calls.length).toBe(UNLINK_BATCHES_IN_FLIGHT);
    for (const c of m.calls) expect(c.entries.length).toBe(UNLINK_BATCH_MAX);
    m.ok(0);
    await last;
    expect(queued).toBe(true);
    for (let i = 1; i < 100 && q.pending > 0; i++) {
      await turn();
      for (let k = 1; k < m.calls.length; k++) m.ok(k);
      await turn();
    }
    expect(q.pending).toBe(0);
    const names = m.calls.flatMap((c) => c.entries.map((e) => e.name));
    expect(names).toHaveLength(MAX_UNLINKS_PENDING + 1);
    expect(new Set(names).size).toBe(MAX_UNLINKS_PENDING + 1);
  });

  it('an unlink waiting for room is already under way in its directory: settled() waits for it', async () => {
    const m = fakeMaster();
    const q = new UnlinkQueue(m.send, silentLogger);
    for (let i = 0; i < MAX_UNLINKS_PENDING; i++) await q.start(1, `n${i}`, 0, () => undefined);
    void q.start(7, 'x', 0, () => undefined); // the caller has already taken x out of its listing of 7
    let settled = false;
    const s7 = q.settled([7]).then(() => (settled = true));
    for (let i = 0; i < 5; i++) await turn();
    expect(settled).toBe(false);
    for (let i = 0; i < 100 && !settled; i++) {
      for (let k = 0; k < m.calls.length; k++) m.ok(k);
      await turn();
    }
    await s7;
    // Settled only once the master was asked to unlink x and answered.
    expect(m.calls.flatMap((c) => c.entries).some((e) => e.parent === 7 && e.name === 'x')).toBe(true);
    expect(q.pending).toBe(0);
  });
});
