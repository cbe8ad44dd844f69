// statfs answers: fetched at mount, reused for a second, then served from the last answer while
// a fresh one is fetched in the background (up to 30 s old), and waited for only past that.
// While the mount is in use (statfs or any other op), the answer is refreshed every 10 s, so it
// does not get that old.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StatFs } from '../../src/client/api.js';
import { OpStats } from '../../src/common/op-stats.js';
import type { FsContext } from '../../src/fuse/context.js';
import { specialOps } from '../../src/fuse/special-ops.js';

const answer = (freeBytes: number): StatFs =>
  ({ totalBytes: 1 << 30, freeBytes, usedBytes: 0, files: 1, freeFiles: 100, blockSize: 4096, nameMax: 255, chunkSize: 1 << 26 }) as StatFs;

/** specialOps over a mounted context (`ctx`, to unmount it) whose client answers with `statfs`. */
function opsWith(statfs: () => Promise<StatFs>, ctx: Partial<FsContext> = {}) {
  return specialOps(Object.assign(ctx, { client: { statfs }, cache: {}, session: {}, stats: ctx.stats ?? new OpStats() }) as unknown as FsContext);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('statfs cache', () => {
  it('answers from the last reply while a fresh one is under way, and waits only when it is too old', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const pending: Array<(s: StatFs) => void> = [];
    const statfs = vi.fn(() => new Promise<StatFs>((resolve) => pending.push(resolve)));
    const ops = opsWith(statfs); // asks once, at mount
    const c = { uid: 0, gid: 0, pid: 1 };
    expect(statfs).toHaveBeenCalledTimes(1);

    const first = ops.statfs(c, 1); // nothing known yet: waits for that answer
    expect(statfs).toHaveBeenCalledTimes(1);
    pending.shift()!(answer(4096 * 10));
    expect((await first).bfree).toBe(10);

    vi.setSystemTime(Date.now() + 500); // within the TTL: no call
    expect((await ops.statfs(c, 1)).bfree).toBe(10);
    expect(statfs).toHaveBeenCalledTimes(1);

    vi.setSystemTime(Date.now() + 2_000); // past the TTL: old answer at once, one fetch behind it
    expect((await ops.statfs(c, 1)).bfree).toBe(10);
    expect((await ops.statfs(c, 1)).bfree).toBe(10);
    expect(statfs).toHaveBeenCalledTimes(2);
    pending.shift()!(answer(4096 * 20));
    await new Promise((r) => setImmediate(r));
    expect((await ops.statfs(c, 1)).bfree).toBe(20);

    vi.setSystemTime(Date.now() + 60_000); // too old to give: waits for the fresh one
    let done = false;
    const late = ops.statfs(c, 1).then((s) => ((done = true), s));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    pending.shift()!(answer(4096 * 30));
    expect((await late).bfree).toBe(30);
  });

  it('a failed background fetch keeps the old answer and is asked again later', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let fail = false;
    const statfs = vi.fn(async () => {
      if (fail) throw new Error('master away');
      return answer(4096 * 5);
    });
    const ops = opsWith(statfs);
    const c = { uid: 0, gid: 0, pid: 1 };
    expect((await ops.statfs(c, 1)).bfree).toBe(5);
    fail = true;
    vi.setSystemTime(Date.now() + 2_000);
    expect((await ops.statfs(c, 1)).bfree).toBe(5);
    await new Promise((r) => setImmediate(r));
    expect((await ops.statfs(c, 1)).bfree).toBe(5);
    expect(statfs).toHaveBeenCalledTimes(3);
    vi.setSystemTime(Date.now() + 60_000);
    await expect(ops.statfs(c, 1)).rejects.toThrow('master away');
  });

  it('keeps the answer fresh in the background while statfs is asked, and stops when it is not', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    let free = 1;
    let fail = false;
    const statfs = vi.fn(async () => {
      if (fail) throw new Error('master away');
      return answer(4096 * free++);
    });
    const ops = opsWith(statfs);
    const c = { uid: 0, gid: 0, pid: 1 };
    expect((await ops.statfs(c, 1)).bfree).toBe(1);
    expect(statfs).toHaveBeenCalledTimes(1);

    // Asked once, then not for 40 s: the answer kept getting refreshed, none waits.
    await vi.advanceTimersByTimeAsync(40_000);
    expect(statfs).toHaveBeenCalledTimes(5);
    expect((await ops.statfs(c, 1)).bfree).toBe(5);
    expect(statfs).toHaveBeenCalledTimes(5); // within the TTL of the last refresh

    // Five minutes after the last ask the refreshes stop.
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    const calls = statfs.mock.calls.length;
    expect(calls).toBe(5 + 30); // every 10 s up to five minutes after the ask at 40 s
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(statfs).toHaveBeenCalledTimes(calls);

    // Too old to give after the pause: the ask waits for a fresh answer, and refreshes resume.
    expect((await ops.statfs(c, 1)).bfree).toBe(free - 1);
    expect(statfs).toHaveBeenCalledTimes(calls + 1);

    // A failed refresh is not retried on its own; the next ask fetches again.
    fail = true;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(statfs).toHaveBeenCalledTimes(calls + 2);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(statfs).toHaveBeenCalledTimes(calls + 2);
    fail = false;
    expect((await ops.statfs(c, 1)).bfree).toBe(free - 1);
    expect(statfs).toHaveBeenCalledTimes(calls + 3);
  });

  it('keeps it fresh while other ops are answered, though statfs is not asked', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    const statfs = vi.fn(async () => answer(4096));
    const stats = new OpStats();
    opsWith(statfs, { stats }); // fetched at mount, never asked
    for (let t = 0; t < 10 * 60_000; t += 30_000) {
      stats.record('readdirplus', 0.1);
      await vi.advanceTimersByTimeAsync(30_000);
    }
    expect(statfs).toHaveBeenCalledTimes(1 + 60); // every 10 s through ten minutes of use
    await vi.advanceTimersByTimeAsync(20 * 60_000);
    expect(statfs.mock.calls.length).toBeLessThanOrEqual(1 + 60 + 31); // then five minutes more at most
    const calls = statfs.mock.calls.length;
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(statfs).toHaveBeenCalledTimes(calls);
  });

  it('does not refresh once unmounted', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    const statfs = vi.fn(async () => answer(4096));
    const ctx: Partial<FsContext> = {};
    const ops = opsWith(statfs, ctx);
    await ops.statfs({ uid: 0, gid: 0, pid: 1 }, 1);
    await vi.advanceTimersByTimeAsync(25_000);
    expect(statfs).toHaveBeenCalledTimes(3);
    ctx.session = undefined;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(statfs).toHaveBeenCalledTimes(3); // the timer armed before the unmount fires and stops
  });
});
