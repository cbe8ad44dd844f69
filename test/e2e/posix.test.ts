// POSIX behaviour through a real FUSE mount: error numbers, permissions for a non-root user,
// open-but-unlinked files, nanosecond and post-2038 times, xattrs, special files, hard links,
// appends, sizes of files being written, offsets past 4 GiB.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sh, shOk, startTestCluster, type TestCluster } from './cluster.js';

const PY = '/usr/bin/python3';
const USER = 'gfs-e2e-user';

let c: TestCluster;
let M: string;

/** Runs a python snippet with M (the mount) and helper `err(f)` -> 'OK' or the errno name. */
function py(code: string, opts: { asUser?: boolean; timeoutMs?: number } = {}): Promise<string> {
  const prelude = [
    'import os, sys, errno, stat, time, ctypes',
    `M = ${JSON.stringify(M)}`,
    'def err(f):',
    '    try:',
    '        f()',
    "        return 'OK'",
    '    except OSError as e:',
    '        return errno.errorcode.get(e.errno, str(e.errno))',
    '',
  ].join('\n');
  const script = `${prelude}\n${code}\n`;
  const b64 = Buffer.from(script).toString('base64');
  const run = `echo ${b64} | base64 -d > /tmp/gfs-e2e-$$.py && chmod 644 /tmp/gfs-e2e-$$.py && ` +
    (opts.asUser ? `setpriv --reuid=$(id -u ${USER}) --regid=$(id -g ${USER}) --clear-groups ${PY} /tmp/gfs-e2e-$$.py` : `${PY} /tmp/gfs-e2e-$$.py`) +
    `; rc=$?; rm -f /tmp/gfs-e2e-$$.py; exit $rc`;
  return shOk(run, { timeoutMs: opts.timeoutMs ?? 60_000 });
}

function lines(out: string): string[] {
  return out.trim().split('\n');
}

beforeAll(async () => {
  c = await startTestCluster({ chunkservers: 3, mount: true });
  M = c.mountDir;
  await sh(`id -u ${USER} >/dev/null 2>&1 || useradd -M -s /bin/sh ${USER}`);
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

describe('gfs mount: POSIX', () => {
  test('error numbers are the ones POSIX names', async () => {
    const out = await py(`
os.mkdir(M + '/e'); open(M + '/e/f', 'w').close(); os.mkdir(M + '/e2')
print(err(lambda: os.stat(M + '/nope')))
print(err(lambda: os.mkdir(M + '/e')))
print(err(lambda: os.open(M + '/e/f', os.O_CREAT | os.O_EXCL | os.O_WRONLY)))
print(err(lambda: os.rmdir(M + '/e')))
print(err(lambda: os.mkdir(M + '/e/f/x')))
print(err(lambda: os.stat(M + '/e/f/x')))
print(err(lambda: os.open(M + '/e', os.O_WRONLY)))
print(err(lambda: os.unlink(M + '/e')))
print(err(lambda: os.rmdir(M + '/e/f')))
print(err(lambda: open(M + '/' + 'x' * 256, 'w')))
print(err(lambda: os.mkdir(M + '/' + 'y' * 300)))
print(err(lambda: open(M + '/' + 'x' * 255, 'w').close()))
print(err(lambda: os.rename(M + '/e/f', M + '/e2/f')))
print(err(lambda: os.rename(M + '/e2', M + '/e/sub')))
print(err(lambda: os.rename(M + '/e', M + '/e/sub')))
print(err(lambda: os.rename(M + '/e', M + '/e/sub/deeper')))
print(err(lambda: os.readlink(M + '/e')))
print(err(lambda: os.rmdir(M + '/e/nope')))
print(err(lambda: os.link(M + '/e', M + '/elink')))
print(err(lambda: os.rename(M + '/e/sub/f', M + '/e')))
os.mkdir(M + '/edir'); os.mkdir(M + '/edir/x')
print(err(lambda: os.rename(M + '/e/sub/f', M + '/edir')))
print(err(lambda: os.rename(M + '/edir', M + '/e/sub/f')))
print(err(lambda: os.rename(M + '/e/sub', M + '/edir')))
`);
    expect(lines(out)).toEqual([
      'ENOENT', 'EEXIST', 'EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'ENOTDIR', 'EISDIR', 'EISDIR', 'ENOTDIR',
      'ENAMETOOLONG', 'ENAMETOOLONG', 'OK', 'OK', 'OK', 'EINVAL', 'EINVAL', 'EINVAL', 'ENOENT', 'EPERM',
      // rename onto an ancestor of the source: the kernel's answer
      'ENOTEMPTY',
      'EISDIR', 'ENOTDIR', 'ENOTEMPTY',
    ]);
  });

  test('a non-root user is refused where POSIX refuses and allowed where it allows', async () => {
    await shOk(`cd ${M} && mkdir -p perm/priv perm/pub perm/tmp && chmod 700 perm/priv && chmod 777 perm/pub && chmod 1777 perm/tmp &&
      echo secret > perm/ro && chmod 644 perm/ro && echo x > perm/tmp/roots && chmod 666 perm/tmp/roots && chmod 755 perm`);
    const out = await py(`
P = M + '/perm'
print(err(lambda: os.listdir(P + '/priv')))
print(err(lambda: open(P + '/ro', 'a')))
print(err(lambda: os.unlink(P + '/ro')))
print(err(lambda: open(P + '/newfile', 'w')))
print(err(lambda: open(P + '/pub/mine', 'w').close()))
st = os.stat(P + '/pub/mine'); print(st.st_uid == os.getuid() and st.st_gid == os.getgid())
print(err(lambda: os.chmod(P + '/pub/mine', 0o600)))
print(err(lambda: os.chown(P + '/pub/mine', 0, -1)))
print(err(lambda: os.chmod(P + '/ro', 0o666)))
print(err(lambda: os.unlink(P + '/tmp/roots')))
print(err(lambda: open(P + '/tmp/roots', 'a').close()))
print(err(lambda: os.utime(P + '/ro', (1, 1))))
print(err(lambda: os.mkdir(P + '/pub/d')))
print(err(lambda: os.rename(P + '/pub/mine', P + '/pub/d/mine2')))
print(open(P + '/ro').read().strip())
`, { asUser: true });
    expect(lines(out)).toEqual([
      'EACCES', 'EACCES', 'EACCES', 'EACCES', 'OK', 'True', 'OK', 'EPERM', 'EPERM', 'EPERM', 'OK', 'EPERM', 'OK', 'OK', 'secret',
    ]);
  });

  test("a non-owner's write or truncate clears setuid and setgid, as on a local file system", async () => {
    // The kernel drops the bits itself, as a chmod made with the writer's cred: refused as
    // a non-owner's chmod, it made the write itself fail with EPERM.
    await shOk(`cd ${M} && mkdir -p suid && chmod 755 suid && for f in w t g; do echo x > suid/$f; done &&
      chmod 6777 suid/w && chmod 4777 suid/t && chmod 2767 suid/g`);
    const out = await py(`
P = M + '/suid'
def append(p):
    with open(p, 'a') as f: f.write('y')
print(err(lambda: append(P + '/w')), err(lambda: os.truncate(P + '/t', 1)), err(lambda: append(P + '/g')))
print(err(lambda: os.chmod(P + '/w', 0o4777)))
`, { asUser: true });
    expect(lines(out)).toEqual(['OK OK OK', 'EPERM']);
    // setgid without group execute is mandatory locking, not privilege: Linux keeps it.
    expect(lines(await shOk(`cd ${M}/suid && stat -c '%a %s' w t g`))).toEqual(['777 3', '777 1', '2767 3']);
  });

  test('an open file stays readable and writable after unlink until closed', async () => {
    const out = await py(`
os.mkdir(M + '/ul')
p = M + '/ul/f'
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'before unlink')
os.unlink(p)
print(os.path.exists(p))
print(os.pread(fd, 100, 0))
os.pwrite(fd, b'+after', 13)
os.fsync(fd)
print(os.pread(fd, 100, 0))
print(os.fstat(fd).st_size, os.fstat(fd).st_nlink)
print(sorted(os.listdir(M + '/ul')))
os.close(fd)
os.rmdir(M + '/ul')
print('rmdir ok')
# rename over a file that is open: the reader keeps the old data, the name has the new one
os.mkdir(M + '/rn')
with open(M + '/rn/t', 'w') as f: f.write('old')
with open(M + '/rn/s', 'w') as f: f.write('new')
r = os.open(M + '/rn/t', os.O_RDONLY)
os.rename(M + '/rn/s', M + '/rn/t')
print(os.pread(r, 10, 0), open(M + '/rn/t').read(), sorted(os.listdir(M + '/rn')), os.fstat(r).st_nlink)
os.close(r)
time.sleep(0.1)
print(sorted(os.listdir(M + '/rn')))
`);
    expect(lines(out)).toEqual([
      'False', "b'before unlink'", "b'before unlink+after'", '19 0', '[]', 'rmdir ok',
      "b'old' new ['t'] 0", "['t']",
    ]);
  });

  test('times: nanoseconds, dates after 2038, UTIME_NOW and UTIME_OMIT', async () => {
    const out = await py(`
p = M + '/times'
open(p, 'w').close()
A = 4102444800 * 10**9 + 123456789   # 2100-01-01, nanoseconds
B = 2147483648 * 10**9 + 999999999   # just past the 32-bit time_t limit
os.utime(p, ns=(A, B))
st = os.stat(p); print(st.st_atime_ns == A, st.st_mtime_ns == B)
C = 1234567890 * 10**9 + 1
os.utime(p, ns=(C, B)); st = os.stat(p); print(st.st_atime_ns == C, st.st_mtime_ns == B)
`);
    expect(lines(out)).toEqual(['True True', 'True True']);
    // touch -a: mtime UTIME_OMIT; touch -m: mtime UTIME_NOW, atime UTIME_OMIT.
    const t = await shOk(`cd ${M} && touch -d '2001-02-03 04:05:06.123456789' t2 && touch -a -d '2050-06-07 08:09:10.5' t2 &&
      stat -c '%x|%y' t2 && sleep 0.01 && touch -m t2 && stat -c '%x|%Y' t2`);
    const [l1, l2] = lines(t);
    expect(l1).toBe('2050-06-07 08:09:10.500000000 +0000|2001-02-03 04:05:06.123456789 +0000');
    const [a2, m2] = l2!.split('|');
    expect(a2).toBe('2050-06-07 08:09:10.500000000 +0000');
    expect(Math.abs(Number(m2) - Date.now() / 1000)).toBeLessThan(60);
  });

  test('times before 1970 show in stat and in a listing with attributes (readdirplus)', async () => {
    // A negative time in a listing's reply once crashed the whole mount.
    const out = await shOk(`mkdir ${M}/old && cd ${M}/old && touch -d '1965-01-01 00:00:00.25' f && touch -d '1969-12-31 23:59:59.5' g &&
      sync && echo 3 > /proc/sys/vm/drop_caches && ls -l --time-style=+%s.%N . | awk 'NR > 1 { print $6, $7 }' && stat -c '%n %Y' f g`);
    expect(lines(out)).toEqual(['-157766400.250000000 f', '-1.500000000 g', 'f -157766400', 'g -1']);
  });

  // drop_caches makes the kernel forget every inode it can, in FORGET batches of thousands,
  // while handles stay open and directories are being changed.
  test('after the kernel forgets its inodes, names, attrs, open handles and directory changes are all still right', async () => {
    const out = await py(`
d = M + '/forgot'; os.mkdir(d); os.mkdir(d + '/sub')
for i in range(300):
    with open('%s/sub/f%03d' % (d, i), 'wb') as f: f.write(b'%d' % i)
os.link(d + '/sub/f007', d + '/hard')
held = os.open(d + '/sub/f010', os.O_RDWR)
def drop():
    os.sync()
    with open('/proc/sys/vm/drop_caches', 'w') as f: f.write('3')
drop()
names = sorted(os.listdir(d + '/sub'))
print(len(names), names[0], names[-1], os.stat(d + '/hard').st_nlink, os.stat(d + '/hard').st_ino == os.stat(d + '/sub/f007').st_ino)
os.pwrite(held, b'changed', 0)
drop()
print(os.pread(held, 20, 0), open(d + '/sub/f010', 'rb').read())
os.unlink(d + '/sub/f000'); os.rename(d + '/sub/f001', d + '/sub/moved'); open(d + '/sub/new', 'w').close()
drop()
names = set(os.listdir(d + '/sub'))
print(len(names), 'f000' in names, 'f001' in names, 'moved' in names, 'new' in names, err(lambda: os.stat(d + '/sub/f000')))
print(all(open('%s/sub/f%03d' % (d, i), 'rb').read() == b'%d' % i for i in range(2, 300) if i != 10))
os.close(held)
`);
    expect(lines(out)).toEqual([
      '300 f000 f299 2 True',
      "b'changed' b'changed'",
      '300 False False True True ENOENT',
      'True',
    ]);
  });

  test('names must be UTF-8: other bytes are refused with EILSEQ, never mapped onto another name', async () => {
    const out = await py(`
d = M.encode() + b'/names'
os.mkdir(d)
def make(n):
    def f():
        with open(d + b'/' + n, 'wb') as fh: fh.write(n)
    return f
print(err(make('café-\\U0001F600'.encode())))
print(err(make(b'caf\\xe9')), err(make(b'\\xc0\\xaf')), err(make(b'\\xed\\xa0\\x80')), err(make(b'\\xef\\xbf\\xbd')))
print(err(lambda: os.stat(d + b'/caf\\xe9')), err(lambda: os.mkdir(d + b'/\\xff')), err(lambda: os.symlink(b'/t\\xff', d + b'/l')))
print(err(lambda: os.rename(d + b'/\\xef\\xbf\\xbd', d + b'/\\xfe')), err(lambda: os.setxattr(d, b'user.\\xff', b'v')))
print(sorted(os.listdir(d)) == sorted(['café-\\U0001F600'.encode(), b'\\xef\\xbf\\xbd']))
print(open(d + b'/\\xef\\xbf\\xbd', 'rb').read() == b'\\xef\\xbf\\xbd')
`);
    // The U+FFFD name itself is valid UTF-8: it is a name like any other, and the invalid
    // names that would once have become it are refused instead of opening it.
    expect(lines(out)).toEqual(['OK', 'EILSEQ EILSEQ EILSEQ OK', 'EILSEQ EILSEQ EILSEQ', 'EILSEQ EILSEQ', 'True', 'True']);
  });

  test('a file extended by truncate reads zeros, also where a buffered write was cut off', async () => {
    // Chunks are created on the chunkservers by their first write: before this, reading a
    // chunk allocated but never written failed with EIO on every replica.
    const out = await py(`
MiB = 2**20
def case(steps, at, n):
    p = M + '/trunc'
    f = os.open(p, os.O_CREAT | os.O_RDWR | os.O_TRUNC)
    try:
        for s in steps: s(f)
        return os.pread(f, n, at) == bytes(n) and os.fstat(f).st_size
    finally:
        os.close(f)
print(case([lambda f: os.ftruncate(f, 5 * 10**6)], 4999995, 5))
print(case([lambda f: os.pwrite(f, b'end', 10**7), lambda f: os.ftruncate(f, 5 * 10**6)], 4999990, 10))
print(case([lambda f: os.ftruncate(f, 70 * MiB)], 68 * MiB, 10))
print(case([lambda f: os.pwrite(f, b'abc', 66 * MiB), lambda f: os.ftruncate(f, 65 * MiB)], 65 * MiB - 5, 5))
`);
    expect(lines(out)).toEqual(['5000000', '5000000', String(70 * 2 ** 20), String(65 * 2 ** 20)]);
  });

  test('xattrs: set, get, list, remove, flags, ENODATA and ERANGE', async () => {
    const out = await py(`
p = M + '/xa'
open(p, 'w').close()
os.setxattr(p, 'user.k', b'value')
os.setxattr(p, 'user.empty', b'')
os.setxattr(p, 'user.big', b'z' * 4000)
print(os.getxattr(p, 'user.k'), os.getxattr(p, 'user.empty'), len(os.getxattr(p, 'user.big')))
print(sorted(os.listxattr(p)))
print(err(lambda: os.getxattr(p, 'user.missing')))
print(err(lambda: os.setxattr(p, 'user.k', b'x', os.XATTR_CREATE)))
print(err(lambda: os.setxattr(p, 'user.nope', b'x', os.XATTR_REPLACE)))
os.setxattr(p, 'user.k', b'v2', os.XATTR_REPLACE); print(os.getxattr(p, 'user.k'))
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(2)
r = libc.getxattr(p.encode(), b'user.k', buf, ctypes.c_size_t(1)); print(r, errno.errorcode[ctypes.get_errno()])
print(libc.getxattr(p.encode(), b'user.big', None, ctypes.c_size_t(0)))
os.removexattr(p, 'user.k')
print(err(lambda: os.getxattr(p, 'user.k')), sorted(os.listxattr(p)))
print(err(lambda: os.removexattr(p, 'user.k')))
# No SELinux labels (the kernel labels FUSE by policy): ENOTSUP, which GNU ls -l takes as
# "not on this device" and stops asking for every file.
print(err(lambda: os.getxattr(p, 'security.selinux')), err(lambda: os.setxattr(p, 'security.selinux', b'x')), err(lambda: os.removexattr(p, 'security.selinux')))
os.setxattr(p, 'security.other', b's'); print(os.getxattr(p, 'security.other'), sorted(os.listxattr(p)))
`);
    expect(lines(out)).toEqual([
      "b'value' b'' 4000",
      "['user.big', 'user.empty', 'user.k']",
      'ENODATA',
      'EEXIST',
      'ENODATA',
      "b'v2'",
      '-1 ERANGE',
      '4000',
      "ENODATA ['user.big', 'user.empty']",
      'ENODATA',
      'ENOTSUP ENOTSUP ENOTSUP',
      "b's' ['security.other', 'user.big', 'user.empty']",
    ]);
  });

  test('mknod: fifo, character and block devices, unix socket', async () => {
    const out = await py(`
os.mkfifo(M + '/fifo', 0o640)
os.mknod(M + '/chr', stat.S_IFCHR | 0o600, os.makedev(1, 3))
os.mknod(M + '/blk', stat.S_IFBLK | 0o600, os.makedev(8, 17))
os.mknod(M + '/sock', stat.S_IFSOCK | 0o600)
s = os.stat(M + '/fifo'); print(stat.S_ISFIFO(s.st_mode), oct(stat.S_IMODE(s.st_mode)))
s = os.stat(M + '/chr'); print(stat.S_ISCHR(s.st_mode), os.major(s.st_rdev), os.minor(s.st_rdev))
s = os.stat(M + '/blk'); print(stat.S_ISBLK(s.st_mode), os.major(s.st_rdev), os.minor(s.st_rdev))
s = os.stat(M + '/sock'); print(stat.S_ISSOCK(s.st_mode))
`);
    expect(lines(out)).toEqual(['True 0o640', 'True 1 3', 'True 8 17', 'True']);
    // A fifo on the mount works as a fifo (the kernel handles the data, gfs only the inode).
    const fifo = await shOk(`cd ${M} && (echo through-the-fifo > fifo &) && timeout 10 cat fifo`);
    expect(fifo.trim()).toBe('through-the-fifo');
  });

  test('hard links: nlink, mode and owner are current under every name', async () => {
    const out = await py(`
a = M + '/hl_a'; b = M + '/hl_b'
with open(a, 'w') as f: f.write('data')
s = os.stat(a); print(s.st_nlink)
os.link(a, b)
print(os.stat(a).st_nlink, os.stat(b).st_nlink, os.stat(a).st_ino == os.stat(b).st_ino)
os.chmod(b, 0o600); print(oct(stat.S_IMODE(os.stat(a).st_mode)))
os.chown(a, 4321, 8765); s = os.stat(b); print(s.st_uid, s.st_gid)
os.unlink(a); print(os.stat(b).st_nlink, open(b).read())
os.link(b, a); os.rename(a, M + '/hl_c'); print(os.stat(b).st_nlink, os.stat(M + '/hl_c').st_nlink)
os.mkdir(M + '/hl_dir'); os.mkdir(M + '/hl_dir/sub'); print(os.stat(M + '/hl_dir').st_nlink)
os.rmdir(M + '/hl_dir/sub'); print(os.stat(M + '/hl_dir').st_nlink)
`);
    expect(lines(out)).toEqual(['1', '2 2 True', '0o600', '4321 8765', '1 data', '2 2', '3', '2']);
  });

  // The kernel reads directories with READDIRPLUS (names and attributes in one answer, taken as
  // lookups): a listing spanning many answers must give every name once, each with its own
  // attributes, and changes made after it must show at once.
  test('a large directory lists every name once with its own attributes; later changes show at once', async () => {
    const out = await py(`
d = M + '/big_dir'; os.mkdir(d)
N = 700
for i in range(N):
    with open('%s/entry-%04d' % (d, i), 'wb') as f: f.write(b'x' * (i % 97))
    os.chmod('%s/entry-%04d' % (d, i), 0o600 | (i % 2) * 0o44)
seen = {}
with os.scandir(d) as it:
    for e in it:
        s = e.stat(follow_symlinks=False)
        seen[e.name] = (s.st_size, stat.S_IMODE(s.st_mode), s.st_ino == e.inode())
bad = [n for n, (size, mode, same) in seen.items()
       if size != int(n[6:]) % 97 or mode != (0o600 | (int(n[6:]) % 2) * 0o44) or not same]
print(len(seen), sorted(seen) == ['entry-%04d' % i for i in range(N)], bad[:3])
ls = os.listdir(d)
os.chmod(d + '/entry-0003', 0o640)
os.rename(d + '/entry-0004', d + '/renamed')
os.unlink(d + '/entry-0005')
with open(d + '/entry-0006', 'ab') as f: f.write(b'more')
print(oct(stat.S_IMODE(os.lstat(d + '/entry-0003').st_mode)), os.path.exists(d + '/entry-0004'),
      os.lstat(d + '/renamed').st_size, err(lambda: os.lstat(d + '/entry-0005')), os.lstat(d + '/entry-0006').st_size)
names = set(os.listdir(d))
print(len(names), 'renamed' in names, 'entry-0004' in names, 'entry-0005' in names)
`, { timeoutMs: 120_000 });
    expect(lines(out)).toEqual(['700 True []', '0o640 False 4 ENOENT 10', '699 True False False']);
  }, 150_000);

  // The kernel reads a directory at the first getdents, which can come long after the open;
  // by then the mount's cached attrs may have lapsed, and entries go without attrs. Every
  // entry must still carry its inode number: glibc's readdir skips d_ino 0 as deleted.
  test('a directory read well after it was opened lists every name with its inode', async () => {
    const out = await py(`
d = M + '/late_read'; os.mkdir(d)
for i in range(20): open('%s/f%02d' % (d, i), 'w').close()
os.mkdir(d + '/sub')
inos = {n: os.lstat(d + '/' + n).st_ino for n in os.listdir(d)}
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
time.sleep(2.5) # past the attr timeout (1 s): the entries' attrs have lapsed in the mount
with os.scandir(fd) as it: seen = {e.name: e.inode() for e in it}
os.close(fd)
print(len(seen), seen == inos)
`);
    expect(lines(out)).toEqual(['21 True']);
  });

  // Listing a directory reads its subdirectories' listings ahead; a name made in one of them
  // while that read is in flight must still be listed (an older listing is never kept).
  test('names made while a parent is being listed show in their directory', async () => {
    const out = await py(`
import threading, time
d = M + '/walk'; os.mkdir(d)
for i in range(16): os.mkdir('%s/s%d' % (d, i))
lost = []
for r in range(10):
    time.sleep(1.1) # past the attr timeout: the listing of d reads its subdirectories' again
    t = threading.Thread(target=lambda: os.listdir(d))
    t.start()
    for i in range(16): open('%s/s%d/f%d' % (d, i, r), 'w').close()
    t.join()
    for i in range(16):
        if ('f%d' % r) not in os.listdir('%s/s%d' % (d, i)): lost.append((r, i))
print(len(lost), lost[:3])
`, { timeoutMs: 120_000 });
    expect(lines(out)).toEqual(['0 []']);
  }, 150_000);

  test('appends land at the end; two handles see each other; sizes include buffered writes', async () => {
    await shOk(`cd ${M} && for i in 1 2 3; do echo line$i >> app; done && (echo a1; sleep 0.05; echo a2) >> app`);
    expect((await shOk(`cat ${M}/app`)).trim().split('\n')).toEqual(['line1', 'line2', 'line3', 'a1', 'a2']);
    const out = await py(`
p = M + '/two'
w = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
w2 = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(w, b'A' * 5); os.write(w2, b'B' * 3); os.write(w, b'C' * 2)
r = os.open(p, os.O_RDONLY)
print(os.read(r, 100))
big = os.open(M + '/growing', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(big, b'x' * (10 * 1024 * 1024 + 7))
import subprocess
print(subprocess.check_output(['stat', '-c', '%s', M + '/growing']).decode().strip())
os.close(big)
for fd in (w, w2, r): os.close(fd)
print(os.stat(M + '/growing').st_size)
`);
    expect(lines(out)).toEqual(["b'AAAAABBBCC'", '10485767', '10485767']);
  });

  test('random writes, reads and truncates through two handles match a local file (fsx-style)', async () => {
    const out = await py(`
import random
random.seed(12345)
local = '/tmp/gfs-e2e-fsx-%d' % os.getpid()
L = os.open(local, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
G1 = os.open(M + '/fsx', os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
G2 = os.open(M + '/fsx', os.O_RDWR)
MAXSZ = 12 * 1024 * 1024
bad = 0
for i in range(400):
    op = random.random()
    g = G1 if random.random() < 0.5 else G2
    if op < 0.45:
        off = random.randrange(0, MAXSZ)
        n = random.choice([1, 100, 4096, 65536, 131072, 1000000, 5000000])
        n = min(n, MAXSZ - off) or 1
        data = random.randbytes(n)
        os.pwrite(L, data, off); os.pwrite(g, data, off)
    elif op < 0.55:
        off = random.randrange(0, MAXSZ)
        os.ftruncate(L, off); os.ftruncate(g, off)
    elif op < 0.6:
        os.close(G2); G2 = os.open(M + '/fsx', os.O_RDWR)  # close() lands the data
    elif op < 0.65:
        os.fsync(g)  # also after truncates, which bump chunk versions
    else:
        size = os.fstat(L).st_size
        off = random.randrange(0, max(size, 1) + 1000)
        n = random.choice([1, 4096, 131072, 3000000])
        a = os.pread(L, n, off); b = os.pread(g, n, off)
        if a != b: bad += 1; print('mismatch at op', i, off, n, len(a), len(b))
    if os.fstat(L).st_size != os.fstat(g).st_size: bad += 1; print('size mismatch at op', i)
for fd in (G1, G2): os.close(fd)
os.close(L)
a = open(local, 'rb').read(); b = open(M + '/fsx', 'rb').read()
print('final', a == b, bad)
os.unlink(local)
`, { timeoutMs: 120_000 });
    expect(out.trim().split('\n').slice(-1)).toEqual(['final True 0']);
  }, 150_000);

  test('writes at offsets past 4 GiB; holes read as zeros', async () => {
    const out = await py(`
p = M + '/huge'
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
off = 5 * 2**30 + 12345
os.pwrite(fd, b'far away', off)
os.close(fd)
fd = os.open(p, os.O_RDONLY)
print(os.fstat(fd).st_size == off + 8, os.pread(fd, 8, off), os.pread(fd, 4, 2**32) == bytes(4))
os.close(fd)
`);
    expect(lines(out)).toEqual(["True b'far away' True"]);
  });

  test('fallocate: allocate, keep size, punch a hole, zero a range; more than the free space is ENOSPC; other modes are EOPNOTSUPP', async () => {
    const out = await py(`
import random
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
KEEP, PUNCH, ZERO, COLLAPSE = 0x01, 0x02, 0x10, 0x08
def fa(fd, mode, off, n):
    if libc.fallocate(fd, mode, off, n) != 0:
        raise OSError(ctypes.get_errno(), 'fallocate')
p = M + '/falloc'
model = bytearray(random.randbytes(3_000_000))
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, model, 0)
def apply(mode, off, n):
    global model
    fa(fd, mode, off, n)
    end = off + n
    if mode & (PUNCH | ZERO):
        stop = min(end, len(model))
        if off < stop: model[off:stop] = bytes(stop - off)
    if not mode & KEEP and end > len(model):
        model += bytes(end - len(model))
apply(PUNCH | KEEP, 1000, 5000)            # a hole inside
apply(PUNCH | KEEP, 2_900_000, 5_000_000)  # past the end: the size stays
apply(ZERO | KEEP, 64 * 1024 - 7, 300_000)
apply(KEEP, 0, 10_000_000)                 # nothing to do
apply(0, 0, 1_000)                         # inside: nothing changes
apply(0, 2_000_000, 1_500_000)             # extends to 3.5 MB
os.pwrite(fd, b'tail', 3_499_000); model[3_499_000:3_499_004] = b'tail'
apply(ZERO, 3_400_000, 700_000)            # zeroes data and extends
print(os.fstat(fd).st_size == len(model), os.pread(fd, len(model) + 10, 0) == model)
print(err(lambda: fa(fd, COLLAPSE, 0, 4096)), err(lambda: fa(fd, PUNCH, 0, 4096)), err(lambda: fa(fd, 0, 0, 0)))
free = os.statvfs(M).f_bavail * os.statvfs(M).f_frsize
big = free + 2**40  # past what the cluster has, short of the largest file size
print(err(lambda: fa(fd, 0, 0, big)), err(lambda: fa(fd, KEEP, len(model), big)), err(lambda: fa(fd, ZERO, 0, big)), os.fstat(fd).st_size == len(model))
apply(KEEP, len(model) - 10, 10_000)       # what fits is fine past the end too
os.close(fd)
ro = os.open(p, os.O_RDONLY)
print(err(lambda: fa(ro, 0, 0, 10_000_000)))
os.close(ro)
open('/proc/sys/vm/drop_caches', 'w').write('3')
print(open(p, 'rb').read() == model)
q = M + '/posix-falloc'
fd = os.open(q, os.O_WRONLY | os.O_CREAT, 0o644)
os.posix_fallocate(fd, 0, 5 * 2**20)
os.close(fd)
print(os.stat(q).st_size, open(q, 'rb').read() == bytes(5 * 2**20))
`, { timeoutMs: 120_000 });
    expect(lines(out)).toEqual(['True True', 'ENOTSUP ENOTSUP EINVAL', 'ENOSPC ENOSPC ENOSPC True', 'EBADF', 'True', `${5 * 2 ** 20} True`]);
  }, 150_000);

  test('statfs reports capacity and NAME_MAX 255', async () => {
    const out = await shOk(`stat -f -c '%l %b %S' ${M}`);
    const [namemax, blocks] = out.trim().split(' ').map(Number);
    expect(namemax).toBe(255);
    expect(blocks).toBeGreaterThan(0);
  });
});
