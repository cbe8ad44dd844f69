// Unlinks answered before the master applies them (unlink-queue.ts): through a real mount,
// nothing that follows an rm can tell, and the master has them all once anything asks.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { shOk, startTestCluster, type TestCluster } from './cluster.js';

let c: TestCluster;
let M: string;

function py(code: string): Promise<string> {
  const script = `import os, time, errno\nM = ${JSON.stringify(M)}\n${code}\n`;
  const b64 = Buffer.from(script).toString('base64');
  return shOk(`echo ${b64} | base64 -d > /tmp/gfs-unl-$$.py && python3 /tmp/gfs-unl-$$.py; rc=$?; rm -f /tmp/gfs-unl-$$.py; exit $rc`, { timeoutMs: 60_000 });
}

beforeAll(async () => {
  c = await startTestCluster({ chunkservers: 3, mount: true });
  M = c.mountDir;
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

describe('gfs mount: unlinks in the background', () => {
  test('rm -rf of a tree, then the same names again, rmdir, and the master agrees', async () => {
    const out = await py(`
d = M + '/t'
os.mkdir(d)
for i in range(300):
    with open('%s/f%d' % (d, i), 'wb') as f: f.write(b'x' * 100)
os.listdir(d)  # the listing that lets the unlinks go to the background
before = os.stat(d)
time.sleep(0.05)
for i in range(300): os.unlink('%s/f%d' % (d, i))
after = os.stat(d)
print(len(os.listdir(d)), after.st_mtime_ns > before.st_mtime_ns, after.st_ctime_ns > before.st_ctime_ns)
# a name made again right after its unlink is the new file
for i in range(0, 300, 50):
    with open('%s/f%d' % (d, i), 'wb') as f: f.write(b'new')
print(sorted(os.listdir(d)) == sorted('f%d' % i for i in range(0, 300, 50)))
for i in range(0, 300, 50): os.unlink('%s/f%d' % (d, i))
os.rmdir(d)  # waits for the unlinks in it: the master sees it empty
print(os.path.exists(d))
`);
    expect(out.trim().split('\n')).toEqual(['0 True True', 'True', 'False']);
    // The master itself: no trace of the tree.
    await expect(c.client.getattr('/t')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('the unlink of a file with another name, or open, is applied before it returns', async () => {
    const out = await py(`
a = M + '/a'; b = M + '/b'
with open(a, 'wb') as f: f.write(b'data')
os.link(a, b)
os.listdir(M)
os.unlink(a)
print(os.stat(b).st_nlink)
fd = os.open(b, os.O_RDONLY)
os.unlink(b)
print(os.read(fd, 10))
os.close(fd)
print(os.path.exists(a), os.path.exists(b))
`);
    expect(out.trim().split('\n')).toEqual(['1', "b'data'", 'False False']);
  });

  test('unmount waits for the unlinks under way', async () => {
    await py(`
os.mkdir(M + '/u')
for i in range(200): open('%s/u/f%d' % (M, i), 'w').close()
os.listdir(M + '/u')
for i in range(200): os.unlink('%s/u/f%d' % (M, i))
`);
    await c.mount!.unmount();
    const listing = await c.client.readdir('/u');
    expect(listing.length).toBe(0);
    await c.remount();
  });
});
