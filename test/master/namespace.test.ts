import { describe, expect, it } from 'vitest';
import { toAttr } from '../../src/master/attr.js';
import { MasterState, type Mutation } from '../../src/master/mutations.js';
import { restore, snapshot } from '../../src/master/snapshot.js';
import { S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_ISGID } from '../../src/master/inode.js';
import { ROOT, T0, USER, addServers, code, makeMaster } from './helpers.js';

const later = (a: { sec: number; nsec: number }, b: { sec: number; nsec: number }) =>
  a.sec > b.sec || (a.sec === b.sec && a.nsec > b.nsec);

describe('namespace basics', () => {
  it('has a root directory', () => {
    const m = makeMaster();
    const a = toAttr(m.ns.getattr('/', 0));
    expect(a).toMatchObject({ ino: 1, mode: 0o40755, uid: 0, gid: 0, nlink: 2, size: 4096, blocks: 8, goal: 3 });
  });

  it('creates dirs and files with owners, nlink and times', () => {
    const m = makeMaster();
    const d = m.ns.mkdir('/d', 0o777, USER, 0o022);
    expect(d.mode).toBe(S_IFDIR | 0o755);
    expect(d.uid).toBe(1000);
    expect(m.ns.getattr('/', 0).nlink).toBe(3);
    expect(later(m.ns.getattr('/', 0).mtime, T0)).toBe(true);
    const f = m.ns.create('/d/f', 0o100644, USER, 0, true);
    expect(f.mode).toBe(S_IFREG | 0o644);
    expect(f.nlink).toBe(1);
    expect(toAttr(f).blocks).toBe(0);
    expect(m.ns.getattr('/d', 0).mtime).toEqual(f.ctime);
    expect(m.ns.getattr('', f.ino)).toBe(f);
    expect(m.ns.getattr('/d/./f', 0)).toBe(f);
  });

  it('reports path errors', async () => {
    const m = makeMaster();
    m.ns.create('/f', 0o644, ROOT, 0, false);
    expect(await code(() => m.ns.getattr('/nope', 0))).toBe('ENOENT');
    expect(await code(() => m.ns.getattr('/nope/x', 0))).toBe('ENOENT');
    expect(await code(() => m.ns.getattr('/f/x', 0))).toBe('ENOTDIR');
    expect(await code(() => m.ns.mkdir('/f/x', 0o755, ROOT, 0))).toBe('ENOTDIR');
    expect(await code(() => m.ns.mkdir('/' + 'a'.repeat(256), 0o755, ROOT, 0))).toBe('ENAMETOOLONG');
    expect(await code(() => m.ns.mkdir('/' + 'a'.repeat(255), 0o755, ROOT, 0))).toBe('OK');
    expect(await code(() => m.ns.getattr('/' + 'a/'.repeat(2100), 0))).toBe('ENAMETOOLONG');
    expect(await code(() => m.ns.getattr('relative', 0))).toBe('EINVAL');
    expect(await code(() => m.ns.getattr('', 424242))).toBe('ENOENT');
    expect(await code(() => m.ns.mkdir('/', 0o755, ROOT, 0))).toBe('EEXIST');
    expect(await code(() => m.ns.mkdir('/f', 0o755, ROOT, 0))).toBe('EEXIST');
  });

  it('create: exclusive, non-exclusive, on a directory', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    expect(await code(() => m.ns.create('/f', 0o644, ROOT, 0, true))).toBe('EEXIST');
    expect(m.ns.create('/f', 0o600, ROOT, 0, false)).toBe(f);
    m.ns.mkdir('/d', 0o755, ROOT, 0);
    expect(await code(() => m.ns.create('/d', 0o644, ROOT, 0, false))).toBe('EISDIR');
  });

  it('mknod, symlink, readlink', async () => {
    const m = makeMaster();
    const fifo = m.ns.mknod('/p', S_IFIFO | 0o644, 0, USER, 0);
    expect(fifo.mode).toBe(S_IFIFO | 0o644);
    const dev = m.ns.mknod('/c', S_IFCHR | 0o600, 0x0501, ROOT, 0);
    expect(toAttr(dev).rdev).toBe(0x0501);
    expect(m.ns.mknod('/r', 0o644, 0, ROOT, 0).mode).toBe(S_IFREG | 0o644);
    expect(await code(() => m.ns.mknod('/x', S_IFDIR | 0o755, 0, ROOT, 0))).toBe('EINVAL');
    const l = m.ns.symlink('../some/target', '/l', USER);
    expect(l.mode).toBe(S_IFLNK | 0o777);
    expect(l.size).toBe(14);
    expect(m.ns.readlink('/l', 0)).toBe('../some/target');
    expect(await code(() => m.ns.readlink('/p', 0))).toBe('EINVAL');
    expect(await code(() => m.ns.symlink('x'.repeat(4097), '/l2', ROOT))).toBe('ENAMETOOLONG');
    expect(await code(() => m.ns.symlink('t', '/l', ROOT))).toBe('EEXIST');
  });

  it('link and unlink count names', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const ctime = f.ctime;
    m.ns.link('/f', '/g');
    expect(f.nlink).toBe(2);
    expect(later(f.ctime, ctime)).toBe(true);
    expect(m.ns.getattr('/g', 0)).toBe(f);
    m.ns.mkdir('/d', 0o755, ROOT, 0);
    expect(await code(() => m.ns.link('/d', '/d2'))).toBe('EPERM');
    expect(await code(() => m.ns.link('/f', '/g'))).toBe('EEXIST');
    expect(await code(() => m.ns.link('/missing', '/h'))).toBe('ENOENT');
    m.ns.unlink('/f');
    expect(f.nlink).toBe(1);
    expect(m.ns.getattr('/g', 0)).toBe(f);
    expect(await code(() => m.ns.unlink('/d'))).toBe('EISDIR');
    expect(await code(() => m.ns.unlink('/f'))).toBe('ENOENT');
    m.ns.unlink('/g');
    expect(await code(() => m.ns.getattr('', f.ino))).toBe('ENOENT');
  });

  it('rmdir', async () => {
    const m = makeMaster();
    m.ns.mkdir('/d', 0o755, ROOT, 0);
    m.ns.mkdir('/d/e', 0o755, ROOT, 0);
    m.ns.create('/f', 0o644, ROOT, 0, true);
    expect(m.ns.getattr('/d', 0).nlink).toBe(3);
    expect(await code(() => m.ns.rmdir('/d'))).toBe('ENOTEMPTY');
    expect(await code(() => m.ns.rmdir('/f'))).toBe('ENOTDIR');
    expect(await code(() => m.ns.rmdir('/'))).toBe('EBUSY');
    expect(await code(() => m.ns.rmdir('/nope'))).toBe('ENOENT');
    m.ns.rmdir('/d/e');
    expect(m.ns.getattr('/d', 0).nlink).toBe(2);
    m.ns.rmdir('/d');
    expect(m.ns.getattr('/', 0).nlink).toBe(2);
  });

  it('setgid directories pass on their group', () => {
    const m = makeMaster();
    const d = m.ns.mkdir('/shared', 0o2775, ROOT, 0);
    m.core.mutate({ op: 'setattr', ino: d.ino, gid: 50, time: T0 });
    const sub = m.ns.mkdir('/shared/sub', 0o755, USER, 0);
    expect(sub.gid).toBe(50);
    expect(sub.mode & S_ISGID).toBe(S_ISGID);
    const f = m.ns.create('/shared/f', 0o644, USER, 0, true);
    expect(f.gid).toBe(50);
    expect(f.mode & S_ISGID).toBe(0);
    expect(m.ns.create('/plain', 0o644, USER, 0, true).gid).toBe(1000);
  });

  it('readdir paginates in name order without . and ..', async () => {
    const m = makeMaster();
    m.ns.mkdir('/d', 0o755, ROOT, 0);
    for (const n of ['e', 'a', 'c', 'b', 'd']) m.ns.create(`/d/${n}`, 0o644, ROOT, 0, true);
    const p1 = m.ns.readdir('/d', '', 2);
    expect(p1.entries.map((e) => e.name)).toEqual(['a', 'b']);
    expect(p1.more).toBe(true);
    expect(p1.dir.ino).toBe(m.ns.getattr('/d', 0).ino);
    m.ns.unlink('/d/b'); // resuming after a name that is gone still works
    const p2 = m.ns.readdir('/d', 'b', 2);
    expect(p2.entries.map((e) => e.name)).toEqual(['c', 'd']);
    const p3 = m.ns.readdir('/d', 'd', 0);
    expect(p3.entries.map((e) => e.name)).toEqual(['e']);
    expect(p3.more).toBe(false);
    expect(await code(() => m.ns.readdir('/d/a', '', 0))).toBe('ENOTDIR');
  });
});

describe('rename', () => {
  it('moves and replaces files atomically, freeing the replaced one', () => {
    const m = makeMaster();
    addServers(m, 3);
    const a = m.ns.create('/a', 0o644, ROOT, 0, true);
    const b = m.ns.create('/b', 0o644, ROOT, 0, true);
    return m.chunks.getChunks(b.ino, 0, 1, true).then(() => {
      const handle = b.chunks!.get(0)!;
      m.ns.rename('/a', '/b', 0);
      expect(m.ns.getattr('/b', 0)).toBe(a);
      expect(m.core.ns.get(b.ino)).toBeUndefined();
      expect(m.core.chunks.get(handle)).toBeUndefined();
      expect(m.cluster.heartbeat({ serverId: 'cs-0', addr: '', capacity: 1, used: 0, load: 0, chunks: [], fullReport: false, corrupt: [] }).delete).toEqual([handle]);
    });
  });

  it('follows POSIX rules for directories', async () => {
    const m = makeMaster();
    m.ns.mkdir('/d1', 0o755, ROOT, 0);
    m.ns.mkdir('/d1/sub', 0o755, ROOT, 0);
    m.ns.mkdir('/empty', 0o755, ROOT, 0);
    m.ns.mkdir('/full', 0o755, ROOT, 0);
    m.ns.create('/full/x', 0o644, ROOT, 0, true);
    m.ns.create('/f', 0o644, ROOT, 0, true);
    expect(await code(() => m.ns.rename('/d1', '/full', 0))).toBe('ENOTEMPTY');
    expect(await code(() => m.ns.rename('/d1', '/f', 0))).toBe('ENOTDIR');
    expect(await code(() => m.ns.rename('/f', '/empty', 0))).toBe('EISDIR');
    expect(await code(() => m.ns.rename('/d1', '/d1/sub/x', 0))).toBe('EINVAL');
    expect(await code(() => m.ns.rename('/d1', '/d1/x', 0))).toBe('EINVAL');
    expect(await code(() => m.ns.rename('/', '/x', 0))).toBe('EBUSY');
    expect(await code(() => m.ns.rename('/nope', '/x', 0))).toBe('ENOENT');
    expect(await code(() => m.ns.rename('/f', '/nope/x', 0))).toBe('ENOENT');
    expect(await code(() => m.ns.rename('/f', '/g', 4))).toBe('EINVAL');
    const d1 = m.ns.getattr('/d1', 0);
    m.ns.rename('/d1', '/empty', 0);
    expect(m.ns.getattr('/empty', 0)).toBe(d1);
    expect(m.ns.getattr('/', 0).nlink).toBe(2 + 2); // /empty (was d1) and /full
    m.ns.rename('/empty', '/full/moved', 0);
    expect(m.ns.getattr('/full', 0).nlink).toBe(3);
    expect(m.ns.getattr('/', 0).nlink).toBe(3);
    expect(m.ns.getattr('/full/moved/sub', 0).ino).toBeGreaterThan(0);
  });

  it('is a no-op for two names of one inode; NOREPLACE and EXCHANGE', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    m.ns.link('/f', '/g');
    m.ns.rename('/f', '/g', 0);
    expect(m.ns.getattr('/f', 0)).toBe(f);
    expect(f.nlink).toBe(2);
    const h = m.ns.create('/h', 0o644, ROOT, 0, true);
    expect(await code(() => m.ns.rename('/h', '/f', 1))).toBe('EEXIST');
    m.ns.rename('/h', '/new', 1);
    m.ns.mkdir('/d', 0o755, ROOT, 0);
    m.ns.mkdir('/e', 0o755, ROOT, 0);
    const sub = m.ns.mkdir('/d/sub', 0o755, ROOT, 0);
    m.ns.rename('/d/sub', '/new', 2);
    expect(m.ns.getattr('/new', 0)).toBe(sub);
    expect(m.ns.getattr('/d/sub', 0)).toBe(h);
    expect(m.ns.getattr('/d', 0).nlink).toBe(2);
    expect(m.ns.getattr('/', 0).nlink).toBe(5); // d, e, new(sub)
    expect(await code(() => m.ns.rename('/d', '/missing', 2))).toBe('ENOENT');
    expect(await code(() => m.ns.rename('/d', '/d/sub', 2))).toBe('EINVAL');
  });
});

describe('setattr and xattrs', () => {
  it('checks chmod/chown permissions', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, USER, 0, true);
    const other = { uid: 2000, gid: 2000, groups: [] };
    expect(await code(() => m.attrs.setattr({ path: '/f', ino: 0, cred: other, valid: 1, mode: 0o777 }))).toBe('EPERM');
    await m.attrs.setattr({ path: '/f', ino: 0, cred: USER, valid: 1, mode: 0o100600 });
    expect(f.mode).toBe(S_IFREG | 0o600);
    expect(await code(() => m.attrs.setattr({ path: '/f', ino: 0, cred: USER, valid: 2, uid: 0 }))).toBe('EPERM');
    expect(await code(() => m.attrs.setattr({ path: '/f', ino: 0, cred: USER, valid: 4, gid: 7 }))).toBe('EPERM');
    expect(await code(() => m.attrs.setattr({ path: '/f', ino: 0, cred: other, valid: 4, gid: 2000 }))).toBe('EPERM');
    const ctime = f.ctime;
    await m.attrs.setattr({ path: '', ino: f.ino, cred: USER, valid: 4, gid: 50 });
    expect(f.gid).toBe(50);
    expect(later(f.ctime, ctime)).toBe(true);
    await m.attrs.setattr({ path: '/f', ino: 0, cred: ROOT, valid: 2 | 4, uid: 5, gid: 6 });
    expect([f.uid, f.gid]).toEqual([5, 6]);
    m.ns.mkdir('/d', 0o755, ROOT, 0);
    expect(await code(() => m.attrs.setattr({ path: '/d', ino: 0, cred: ROOT, valid: 8, size: 0 }))).toBe('EISDIR');
    expect(await code(() => m.attrs.setattr({ path: '/f', ino: 0, cred: ROOT, valid: 8, size: -1 }))).toBe('EINVAL');
  });

  it('sets times with nanoseconds, past 2038', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const t = { sec: 4_102_444_800, nsec: 999_999_999 }; // 2100-01-01
    await m.attrs.setattr({ path: '/f', ino: 0, cred: ROOT, valid: 0, atime: t, mtime: 'now' });
    expect(toAttr(f).atime).toEqual(t);
    expect(f.mtime).toEqual(f.ctime);
  });

  it('grows a file by size only, updating mtime', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const mtime = f.mtime;
    await m.attrs.setattr({ path: '/f', ino: 0, cred: ROOT, valid: 8, size: 1000 });
    expect(f.size).toBe(1000);
    expect(toAttr(f).blocks).toBe(2);
    expect(later(f.mtime, mtime)).toBe(true);
  });

  it('stores xattrs with flags and limits', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    m.attrs.setxattr('/f', 0, 'user.a', Buffer.from('1'), 0);
    expect(await code(() => m.attrs.setxattr('/f', 0, 'user.a', Buffer.from('2'), 1))).toBe('EEXIST');
    expect(await code(() => m.attrs.setxattr('/f', 0, 'user.b', Buffer.from('2'), 2))).toBe('ENODATA');
    m.attrs.setxattr('', f.ino, 'user.a', Buffer.from('3'), 2);
    expect(m.attrs.getxattr('/f', 0, 'user.a').toString()).toBe('3');
    expect(await code(() => m.attrs.getxattr('/f', 0, 'user.zz'))).toBe('ENODATA');
    expect(await code(() => m.attrs.setxattr('/f', 0, 'u'.repeat(256), Buffer.alloc(1), 0))).toBe('ERANGE');
    expect(await code(() => m.attrs.setxattr('/f', 0, 'user.big', Buffer.alloc(64 * 1024 + 1), 0))).toBe('E2BIG');
    m.attrs.setxattr('/f', 0, 'user.max', Buffer.alloc(64 * 1024), 0);
    expect(m.attrs.listxattr('/f', 0).sort()).toEqual(['user.a', 'user.max']);
    m.attrs.removexattr('/f', 0, 'user.a');
    expect(await code(() => m.attrs.removexattr('/f', 0, 'user.a'))).toBe('ENODATA');
  });
});

describe('open-but-unlinked files', () => {
  it('live until the last release, then free their chunks', async () => {
    const m = makeMaster();
    addServers(m, 2);
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    await m.chunks.getChunks(f.ino, 0, 100_000, true);
    const handles = [...f.chunks!.values()];
    expect(handles).toHaveLength(2);
    m.attrs.open('/f', 0, 'c1');
    m.attrs.open('', f.ino, 'c2');
    m.ns.unlink('/f');
    expect(await code(() => m.ns.getattr('/f', 0))).toBe('ENOENT');
    expect(m.ns.getattr('', f.ino).nlink).toBe(0);
    expect(m.core.chunks.get(handles[0]!)).toBeDefined();
    m.attrs.release(f.ino, 'c1');
    expect(m.ns.getattr('', f.ino).nlink).toBe(0);
    m.attrs.release(f.ino, 'c2');
    expect(await code(() => m.ns.getattr('', f.ino))).toBe('ENOENT');
    expect(m.core.chunks.size).toBe(0);
    expect(m.core.registry.takeDeletes('cs-0').sort()).toEqual(handles.sort());
    m.attrs.release(f.ino, 'c2'); // a repeated release is harmless
  });

  it('of a deleted file wait gcDelayMs before their servers are told; other deletes do not', async () => {
    const m = makeMaster({ gcDelayMs: 5_000 });
    addServers(m, 1);
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    await m.chunks.getChunks(f.ino, 0, 1, true);
    const [handle] = [...f.chunks!.values()];
    m.ns.unlink('/f');
    m.core.registry.queueDelete('cs-0', 999); // a stale or corrupt replica: at once
    expect(m.core.registry.takeDeletes('cs-0')).toEqual([999]);
    m.advance(4_999);
    expect(m.core.registry.takeDeletes('cs-0')).toEqual([]);
    m.advance(1);
    expect(m.core.registry.takeDeletes('cs-0')).toEqual([handle]);
    expect(m.core.registry.takeDeletes('cs-0')).toEqual([]);
  });

  it('are handed to each server a bounded number per heartbeat, oldest first', () => {
    const m = makeMaster();
    addServers(m, 1);
    for (let h = 1; h <= 10; h++) m.core.registry.queueDelete('cs-0', 100 + h);
    expect(m.core.registry.takeDeletes('cs-0', 4)).toEqual([101, 102, 103, 104]);
    m.core.registry.cancelDelete('cs-0', 106);
    expect(m.core.registry.takeDeletes('cs-0', 4)).toEqual([105, 107, 108, 109]);
    expect(m.core.registry.takeDeletes('cs-0')).toEqual([110]);
    expect(m.core.registry.takeDeletes('cs-0')).toEqual([]);
  });
});

describe('the mutation path', () => {
  it('replays to the same state and round-trips through a snapshot', async () => {
    const m = makeMaster();
    addServers(m, 3);
    const records: Mutation[] = [];
    m.core.onMutation((r) => records.push(JSON.parse(JSON.stringify(r)) as Mutation));
    m.ns.mkdir('/d', 0o2755, USER, 0);
    const f = m.ns.create('/d/f', 0o644, USER, 0, true);
    m.ns.symlink('f', '/d/l', USER);
    m.ns.mknod('/d/p', S_IFIFO | 0o600, 0, USER, 0);
    m.ns.link('/d/f', '/d/g');
    await m.chunks.getChunks(f.ino, 0, 200_000, true);
    m.chunks.commitWrite(f.ino, 150_000);
    m.chunks.reserveAppend(f.ino, 10);
    await m.attrs.setattr({ path: '/d/f', ino: 0, cred: USER, valid: 8, size: 70_000 });
    m.attrs.setxattr('/d/g', 0, 'user.k', Buffer.from([0, 1, 255]), 0);
    m.ns.rename('/d/g', '/g', 0);
    m.ns.mkdir('/e', 0o755, ROOT, 0);
    m.ns.rename('/d', '/e', 2);
    m.ns.unlink('/e/l');
    m.attrs.removexattr('/g', 0, 'user.k');
    expect(records.map((r) => r.op)).toContain('setVersion');

    const replayed = new MasterState(T0, 3);
    for (const r of records) replayed.apply(r);
    const expected = JSON.stringify(snapshot(m.core.state));
    expect(JSON.stringify(snapshot(replayed))).toBe(expected);
    const again = restore(JSON.parse(expected));
    expect(JSON.stringify(snapshot(again))).toBe(expected);
    expect(again.ns.resolve('/e/f').ino).toBe(f.ino);
    expect(again.chunks.nextHandle).toBe(m.core.chunks.nextHandle);
  });

  it('does not change state on rejected input', async () => {
    const m = makeMaster();
    m.ns.mkdir('/d', 0o755, ROOT, 0);
    const before = JSON.stringify(snapshot(m.core.state));
    for (const bad of [
      () => m.ns.mkdir('/d', 0o755, ROOT, 0),
      () => m.ns.rename('/d', '/d/x', 0),
      () => m.ns.unlink('/d'),
      () => m.attrs.setattr({ path: '/d', ino: 0, cred: ROOT, valid: 8 | 1, size: 1, mode: 0o700 }),
      () => m.chunks.commitWrite(1, 5),
      () => m.chunks.getChunks(999, 0, 1, true),
      () => m.attrs.setxattr('/d', 0, '', Buffer.alloc(0), 0),
    ]) {
      expect(await code(bad)).not.toBe('OK');
    }
    expect(JSON.stringify(snapshot(m.core.state))).toBe(before);
  });
});
