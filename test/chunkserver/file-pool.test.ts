import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/logger.js';
import { DATA_BASE } from '../../src/chunkserver/chunk-meta.js';
import { ChunkStore } from '../../src/chunkserver/chunk-store.js';
import { EMPTY_SYNC_MAX_BYTES, FilePool } from '../../src/chunkserver/file-pool.js';

const dirs: string[] = [];
const stores: ChunkStore[] = [];

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'gfs-pool-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('file pool', () => {
  it('takes back the files it recycled, emptied, and reports when it has none', async () => {
    const dir = await tmp();
    const pool = FilePool.open(join(dir, 'free'), silentLogger, 2);
    expect(pool.take(join(dir, 'x'))).toBe(false);
    for (const name of ['a', 'b', 'c']) await writeFile(join(dir, name), `data of ${name}`);
    const inodes = new Set([(await stat(join(dir, 'a'))).ino, (await stat(join(dir, 'b'))).ino]);
    pool.recycle(join(dir, 'a'));
    pool.recycle(join(dir, 'b'));
    pool.recycle(join(dir, 'c')); // over the bound of 2: removed instead
    pool.recycle(join(dir, 'missing')); // a delete of what is already gone is fine
    expect(pool.size).toBe(2);
    await expect(stat(join(dir, 'c'))).rejects.toThrow();
    expect(await readdir(join(dir, 'free'))).toHaveLength(2);

    for (const name of ['y', 'z']) {
      expect(pool.take(join(dir, name))).toBe(true);
      const st = await stat(join(dir, name));
      expect(st.size).toBe(0); // nothing of the old data can show through
      expect(inodes.has(st.ino)).toBe(true); // the same files: no inode allocated
    }
    expect(pool.take(join(dir, 'w'))).toBe(false);
  });

  it('empties files a crash left with data, keeps counting after them, and drops strangers', async () => {
    const dir = await tmp();
    const free = join(dir, 'free');
    FilePool.open(free, silentLogger);
    await writeFile(join(free, '7'), 'moved here, not yet emptied');
    await writeFile(join(free, 'junk'), 'not a pool name');
    const pool = FilePool.open(free, silentLogger);
    expect(pool.size).toBe(1);
    expect((await stat(join(free, '7'))).size).toBe(0);
    await expect(stat(join(free, 'junk'))).rejects.toThrow();
    await writeFile(join(dir, 'f'), 'x');
    pool.recycle(join(dir, 'f'));
    expect((await readdir(free)).sort()).toEqual(['7', '8']);
  });

  it('empties large files off the event loop: renamed at once, reusable once emptied', async () => {
    const dir = await tmp();
    const pool = FilePool.open(join(dir, 'free'), silentLogger, 1);
    const big = EMPTY_SYNC_MAX_BYTES + 1;
    for (const name of ['big', 'over']) await writeFile(join(dir, name), Buffer.alloc(big, 1));
    pool.recycle(join(dir, 'big'), big);
    // Checked before anything awaits: the emptying runs on the thread pool and may finish at
    // the first turn of the event loop.
    expect(pool.size).toBe(0); // not takeable while it may still hold data
    await expect(stat(join(dir, 'big'))).rejects.toThrow(); // the name is gone at once
    pool.recycle(join(dir, 'over'), big); // the one being emptied fills the pool: removed
    pool.recycle(join(dir, 'missing'), big); // already gone: fine
    await pool.idle();
    await expect(stat(join(dir, 'over'))).rejects.toThrow();
    expect(pool.size).toBe(1);
    const [only, ...rest] = await readdir(join(dir, 'free'));
    expect(rest).toEqual([]);
    expect((await stat(join(dir, 'free', only!))).size).toBe(0);
    expect(pool.take(join(dir, 'new'))).toBe(true);
    expect((await stat(join(dir, 'new'))).size).toBe(0);
  });

  it('chunk store: a deleted chunk\'s file becomes the next chunk\'s, holding only its data', async () => {
    const dir = await tmp();
    const store = await ChunkStore.open(dir);
    stores.push(store);
    await store.write(1, 1, 0, Buffer.alloc(100_000, 0xaa), { create: true, sync: false });
    const old = (await stat(store.chunkPath(1))).ino;
    expect(await store.delete([1])).toBe(1);
    await expect(stat(store.chunkPath(1))).rejects.toThrow();
    expect(await readdir(join(dir, 'free'))).toHaveLength(1);

    await store.write(2, 1, 10, Buffer.from('new chunk'), { create: true, sync: true });
    expect((await stat(store.chunkPath(2))).ino).toBe(old);
    expect(await readdir(join(dir, 'free'))).toHaveLength(0);
    expect((await stat(store.chunkPath(2))).size).toBe(DATA_BASE + 19);
    expect((await store.read(2, 1, 0, 100)).toString()).toBe('\0'.repeat(10) + 'new chunk');
    expect(store.report()).toEqual([{ handle: 2, version: 1, length: 19 }]);

    // And it all survives a restart as the chunk it now is.
    await store.close();
    stores.length = 0;
    const again = await ChunkStore.open(dir);
    stores.push(again);
    expect(again.report()).toEqual([{ handle: 2, version: 1, length: 19 }]);
    expect((await readFile(again.chunkPath(2))).subarray(DATA_BASE + 10).toString()).toBe('new chunk');
  });
});
