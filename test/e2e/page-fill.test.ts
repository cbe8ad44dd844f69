// Random reads through a real mount fill the kernel's page cache with the rest of their 64 KiB
// block (block-fill.ts): the filled pages hold the file's bytes, never stretch its size, and
// never hide a change made by this mount or, after a reopen, by another one.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { shOk, startMount, startTestCluster, type TestCluster, type TestMount } from './cluster.js';

let c: TestCluster;
let A: string;
let B: string;
let second: TestMount | undefined;

/** Runs python with A and B (the two mounts) and helpers: pattern(n, seed), resident(path), drop(path). */
function py(code: string): Promise<string> {
  const prelude = `
import os, sys, hashlib, subprocess, time
A = ${JSON.stringify(A)}
B = ${JSON.stringify(B)}
def pattern(n, seed):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b'%d:%d' % (seed, i)).digest()
        i += 1
    return bytes(out[:n])
def resident(p):
    return int(subprocess.run(['fincore', '-n', '-b', '-o', 'PAGES', p], capture_output=True, text=True, check=True).stdout.split()[0])
def drop(p):
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
def rand_fd(p):
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    return fd
def fresh_file(p, size, seed):
    data = pattern(size, seed)
    with open(p, 'wb') as f: f.write(data)
    drop(p)
    return data
def settle():
    time.sleep(0.3)  # the fills are written by a worker thread after the read's answer
`;
  const b64 = Buffer.from(`${prelude}\n${code}\n`).toString('base64');
  return shOk(`echo ${b64} | base64 -d > /tmp/gfs-fill-$$.py && python3 /tmp/gfs-fill-$$.py; rc=$?; rm -f /tmp/gfs-fill-$$.py; exit $rc`, { timeoutMs: 60_000 });
}

beforeAll(async () => {
  c = await startTestCluster({ chunkservers: 3, mount: true });
  A = c.mountDir;
  B = join(c.dir, 'mnt-b');
  mkdirSync(B);
  second = await startMount(c.dir, c.masterAddr, B, 50);
}, 60_000);

afterAll(async () => {
  await second?.unmount();
  await c?.stop();
});

describe('gfs mount: page cache fills of random reads', () => {
  test('a random 4 KiB read brings in its whole 64 KiB block, with the right bytes, and the size stays', async () => {
    const out = await py(`
size = 4 * 1024 * 1024 + 1000
data = fresh_file(A + '/f1', size, 1)
print(resident(A + '/f1'))
fd = rand_fd(A + '/f1')
assert os.pread(fd, 4096, 5 * 65536 + 8192) == data[5 * 65536 + 8192:5 * 65536 + 12288]
settle()
print(resident(A + '/f1'))
# the last block: the fill ends at the end of the file, which keeps its size
assert os.pread(fd, 4096, 64 * 65536) == data[64 * 65536:64 * 65536 + 4096]
settle()
print(resident(A + '/f1'), os.fstat(fd).st_size == size)
os.close(fd)
with open(A + '/f1', 'rb') as f: print(f.read() == data)
`);
    const [before, afterOne, afterTail, whole] = out.trim().split('\n');
    expect(before).toBe('0');
    expect(afterOne).toBe('16');
    expect(afterTail).toBe(`17 True`); // 16 + the 1000-byte page at the end
    expect(whole).toBe('True');
  });

  test('after another mount rewrites the file, a reopen reads the new bytes, not filled old ones', async () => {
    const out = await py(`
size = 8 * 1024 * 1024
old = fresh_file(A + '/f2', size, 2)
new = pattern(size, 3)
fd = rand_fd(A + '/f2')
for i in range(0, 128, 17):  # more than 1 MiB apart: not taken for a sequential reader
    assert os.pread(fd, 4096, i * 65536 + 4096) == old[i * 65536 + 4096:i * 65536 + 8192]
settle()
os.close(fd)
filled = resident(A + '/f2')
with open(B + '/f2', 'r+b') as f: f.write(new)
time.sleep(1.2)  # the mounts' attr caches (1 s)
with open(A + '/f2', 'rb') as f: got = f.read()
print(filled >= 100, got == new)
`);
    expect(out.trim()).toBe('True True');
  });

  test('close-to-open: what another mount wrote and closed shows at the next open, at once', async () => {
    // No wait for the attr timeout: the open itself learns the new size and times.
    const out = await py(`
p, q = A + '/c2o', B + '/c2o'
with open(p, 'wb') as f: f.write(b'version2-longer')
print(open(q, 'rb').read())
with open(q, 'ab') as f: f.write(b'+b')
print(open(p, 'rb').read())
with open(q, 'wb') as f: f.write(b'short')
print(open(p, 'rb').read())
with open(q, 'wb') as f: f.write(b'SHORT')  # the same size: only the mtime tells
print(open(p, 'rb').read())
`);
    expect(out.trim().split('\n')).toEqual(["b'version2-longer'", "b'version2-longer+b'", "b'short'", "b'SHORT'"]);
  });

  test('a head read at open (the first chunk as this mount last saw it) never shows what another mount replaced', async () => {
    // A wrote these files, so it knows where their first chunks are and reads them while the
    // master answers its open; B's changes (in place, cut and rewritten, grown) must all show.
    const out = await py(`
res = []
for i, how in enumerate(['inplace', 'rewrite', 'grow', 'shrink']):
    p, q = A + '/head%d' % i, B + '/head%d' % i
    old = pattern(8192, 10 + i)
    with open(p, 'wb') as f: f.write(old)
    drop(p)
    new = {'inplace': pattern(8192, 20 + i), 'rewrite': pattern(6000, 30 + i), 'grow': pattern(100000, 40 + i), 'shrink': pattern(100, 50 + i)}[how]
    mode = 'r+b' if how == 'inplace' else 'wb'
    with open(q, mode) as f: f.write(new)
    drop(p)
    res.append(open(p, 'rb').read() == new)
    drop(p)
    res.append(open(p, 'rb').read() == new)  # again, now with the locations the open brought
print(res)
`);
    expect(out.trim()).toBe('[True, True, True, True, True, True, True, True]');
  });

  test('writes through this mount win over fills of the same blocks', async () => {
    const out = await py(`
import threading
size = 16 * 1024 * 1024
base = fresh_file(A + '/f3', size, 4)
want = bytearray(base)
stop = False
def reader():
    fd = rand_fd(A + '/f3')
    n = 0
    while not stop:
        os.pread(fd, 4096, ((n * 97) % 256) * 65536 + (n % 16) * 4096)
        n += 1
    os.close(fd)
t = threading.Thread(target=reader); t.start()
w = os.open(A + '/f3', os.O_RDWR)
for k in range(64):
    off = ((k * 37) % 256) * 65536 + (k % 16) * 4096 + 100
    chunk = pattern(300, 100 + k)
    os.pwrite(w, chunk, off)
    want[off:off + 300] = chunk
os.close(w)
stop = True; t.join()
with open(A + '/f3', 'rb') as f: cached = f.read()
drop(A + '/f3')
with open(A + '/f3', 'rb') as f: fresh = f.read()
print(cached == bytes(want), fresh == bytes(want))
`);
    expect(out.trim()).toBe('True True');
  });

  test('a truncate by name after fills: the size and bytes are the truncated ones', async () => {
    const out = await py(`
size = 24 * 1024 * 1024
data = fresh_file(A + '/f4', size, 5)
fd = rand_fd(A + '/f4')
for i in range(0, 384, 20):
    os.pread(fd, 4096, i * 65536 + 8192)
filled = resident(A + '/f4')
os.truncate(A + '/f4', 100000)
settle()
st = os.fstat(fd).st_size
tail = os.pread(fd, 8192, 98304)
os.close(fd)
with open(A + '/f4', 'rb') as f: got = f.read()
print(filled >= 200, st, len(tail), got == data[:100000])
`);
    expect(out.trim()).toBe('True 100000 1696 True');
  });
});
