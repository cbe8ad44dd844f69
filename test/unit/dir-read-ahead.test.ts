// Readdir-ahead: an opendir reads its subdirectories' listings in the background, so a walk
// (find, ls -R, du) finds them in the cache. A directory's link count (2 + subdirectories)
// says when there are none: a leaf's listing is not scanned for them.
import { describe, expect, it } from 'vitest';
import type { Attr, PackedListing } from '../../src/client/api.js';
import { packEntries } from '../../src/common/dirent-pack.js';
import type { FsContext } from '../../src/fuse/context.js';
import { DirHandles } from '../../src/fuse/dir-handles.js';
import { dirOps } from '../../src/fuse/dir-ops.js';
import { InodeCache } from '../../src/fuse/inode-cache.js';
import { S_IFDIR } from '../../src/fuse/stat.js';
import { UnlinkQueue, type SendUnlinks } from '../../src/fuse/unlink-queue.js';
import { silentLogger } from '../../src/common/logger.js';

const S_IFREG = 0o100000;
const attr = (ino: number, mode: number, nlink: number): Attr => ({
  ino, mode, nlink, uid: 0, gid: 0, size: 0, rdev: 0, blocks: 0,
  atime: { sec: 1, nsec: 0 }, mtime: { sec: 1, nsec: 0 }, ctime: { sec: 1, nsec: 0 }, goal: 3, xattrs: 0,
});

interface Dir {
  /** The directory's own link count as the master reports it. */
  nlink: number;
  entries: Array<{ name: string; attr: Attr }>;
}

/** dirOps over a real cache and handle table, with a client that lists `tree` and records each ReadDir. */
function opsOver(tree: Map<number, Dir>, sendUnlinks: SendUnlinks = async (e) => e.map(() => undefined)) {
  const read: number[] = [];
  const client = {
    async readdirPacked(ino: number): Promise<PackedListing> {
      read.push(ino);
      const d = tree.get(ino)!;
      return { records: packEntries(d.entries), dir: attr(ino, S_IFDIR | 0o755, d.nlink), parent: 1 };
    },
  };
  const unlinks = new UnlinkQueue(sendUnlinks, silentLogger);
  const cache = new InodeCache(60_000);
  const ctx = { client, cache, dirs: new DirHandles({ validS: 1, rootIno: 1 }), unlinks } as unknown as FsContext;
  return { ops: dirOps(ctx), read, unlinks, cache };
}

const files = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ name: `f${i}`, attr: attr(from + i, S_IFREG | 0o644, 1) }));
const subdir = (name: string, ino: number) => ({ name, attr: attr(ino, S_IFDIR | 0o755, 2) });
const settle = () => new Promise((r) => setImmediate(r));
const c = { uid: 0, gid: 0, pid: 1 };

describe('readdir-ahead', () => {
  it("reads a directory's subdirectories ahead, and their opendirs need no ReadDir", async () => {
    // 10: files and two subdirectories (nlink 4); 20 and 30: leaves.
    const tree = new Map<number, Dir>([
      [10, { nlink: 4, entries: [...files(100, 5), subdir('a', 20), ...files(200, 5), subdir('b', 30)] }],
      [20, { nlink: 2, entries: files(300, 3) }],
      [30, { nlink: 2, entries: files(400, 3) }],
    ]);
    const { ops, read } = opsOver(tree);
    await ops.opendir(c, 10);
    await settle();
    expect(read.sort()).toEqual([10, 20, 30]);
    await ops.opendir(c, 20);
    await ops.opendir(c, 30);
    await settle();
    expect(read.length).toBe(3);
  });

  it('does not scan a leaf (link count 2) for subdirectories', async () => {
    // The link count is what decides: an entry typed as a directory in a listing whose
    // directory counts no subdirectories (it went away meanwhile) is not read ahead.
    const tree = new Map<number, Dir>([
      [10, { nlink: 2, entries: [...files(100, 2000), subdir('gone', 20)] }],
      [20, { nlink: 2, entries: [] }],
    ]);
    const { ops, read } = opsOver(tree);
    await ops.opendir(c, 10);
    await settle();
    expect(read).toEqual([10]);
  });

  it('a link count past 2 makes the scan find every subdirectory, the last one too', async () => {
    const tree = new Map<number, Dir>([
      [10, { nlink: 3, entries: [...files(100, 1000), subdir('z', 20)] }],
      [20, { nlink: 2, entries: [] }],
    ]);
    const { ops, read } = opsOver(tree);
    await ops.opendir(c, 10);
    await settle();
    expect(read).toEqual([10, 20]);
  });

  it('does not read ahead a directory with a background unlink not yet on the master', async () => {
    // The master still lists the name until the unlink reaches it: a listing read before that
    // would bring the name back into this mount's cache.
    const tree = new Map<number, Dir>([
      [10, { nlink: 3, entries: [subdir('d', 20)] }],
      [20, { nlink: 2, entries: files(300, 2) }],
    ]);
    let applied!: () => void;
    const held = new Promise<void>((r) => (applied = r));
    const { ops, read, unlinks } = opsOver(tree, async (e) => {
      await held;
      return e.map(() => undefined);
    });
    await unlinks.start(20, 'f0', 0, () => undefined);
    await ops.opendir(c, 10);
    await settle();
    expect(read).toEqual([10]);
    applied();
    await unlinks.all();
    await settle();
    expect(read).toEqual([10, 20]);
  });

  it('a listing waiting for unlinks is refused when another unlink in its directory starts meanwhile', async () => {
    const tree = new Map<number, Dir>([
      [10, { nlink: 3, entries: [subdir('d', 20)] }],
      [20, { nlink: 2, entries: files(300, 3) }],
    ]);
    // The master applies each batch of unlinks when the test says so.
    const batches: Array<() => void> = [];
    const { ops, read, unlinks, cache } = opsOver(tree, (e) =>
      new Promise((resolve) =>
        batches.push(() => {
          const gone = new Set(e.map((x) => x.name));
          tree.get(20)!.entries = tree.get(20)!.entries.filter((x) => !gone.has(x.name));
          resolve(e.map(() => undefined));
        }),
      ),
    );
    await unlinks.start(20, 'f0', 0, () => undefined);
    await settle();
    await ops.opendir(c, 10); // reads 20 ahead, once f0's unlink is applied
    await settle();
    // Meanwhile f1 is unlinked here too (as link-ops does it: out of the cache, then queued).
    cache.removed(20, 'f1');
    await unlinks.start(20, 'f1', 0, () => undefined);
    await settle();
    expect(batches.length).toBe(2);
    batches[0]!(); // f0 applied; f1 not yet: the master still lists it
    for (let i = 0; i < 5; i++) await settle();
    expect(read).toEqual([10, 20]);
    // That listing predates f1's unlink: it is not kept, and f1 does not come back from it.
    expect(cache.lookup(20, 'f1')).toBeUndefined();
    batches[1]!();
    await unlinks.all();
  });
});
