// Changes whose reply is lost with the connection: the client sends them again once it has a
// new session, and the master answers with the first run's outcome instead of running them
// twice (src/master/request-cache.ts). The connection is broken by a TCP relay on 127.0.0.2
// in front of a real in-process master on 127.0.0.1, after the master has answered the call.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GfsClient } from '../../src/client/client.js';
import { FrameReader, Kind } from '../../src/common/data-frame.js';
import { GfsError } from '../../src/common/errors.js';
import { type MasterHandle, startMaster } from '../../src/master/master.js';
import { RequestCache } from '../../src/master/request-cache.js';

const RELAY_HOST = '127.0.0.2';
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function listen(server: net.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, RELAY_HOST, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/**
 * Relays both master ports (gRPC, to ask for the session port; the session port itself, at the
 * same number on RELAY_HOST). `cut(method, marker)` arms it: the next session call of `method`
 * whose request bytes hold `marker` goes through, and once the master's reply to it comes back
 * both sides of that connection are closed instead of passing the reply on.
 */
async function relay(m: MasterHandle): Promise<{ addr: string; cut(method: string, marker: string): Promise<void> }> {
  const masterPort = Number(m.addr.split(':').pop());
  const sessionPort = m.sessions!.port;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  let armed: { method: string; marker: string; done: () => void } | undefined;

  const grpcRelay = net.createServer((down) => {
    const up = net.connect(masterPort, '127.0.0.1');
    track(down);
    track(up);
    down.pipe(up).pipe(down);
    const close = () => (down.destroy(), up.destroy());
    down.on('close', close);
    up.on('close', close);
  });
  const sessionRelay = net.createServer((down) => {
    const up = net.connect(sessionPort, '127.0.0.1');
    track(down);
    track(up);
    let doomed: (() => void) | undefined;
    const calls = new FrameReader((f) => {
      if (!armed || f.kind !== Kind.Call || f.header.toString('utf8') !== armed.method || !f.payload.includes(armed.marker)) return;
      doomed = armed.done;
      armed = undefined;
    });
    down.on('data', (b: Buffer) => {
      calls.push(b);
      up.write(b);
    });
    up.on('data', (b: Buffer) => {
      if (!doomed) return void down.write(b);
      // The master has answered the call: the reply is lost with the connection.
      down.destroy();
      up.destroy();
      doomed();
    });
    const close = () => (down.destroy(), up.destroy());
    down.on('close', close);
    up.on('close', close);
  });
  const grpcPort = await listen(grpcRelay, 0);
  await listen(sessionRelay, sessionPort);
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([grpcRelay, sessionRelay].map((srv) => new Promise((r) => srv.close(r))));
  });
  return {
    addr: `${RELAY_HOST}:${grpcPort}`,
    cut: (method, marker) => new Promise<void>((done) => (armed = { method, marker, done })),
  };
}

async function setup(): Promise<{ m: MasterHandle; c: GfsClient; cut: (method: string, marker: string) => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gfs-once-'));
  const m = await startMaster({ dataDir, port: 0, chunkSize: 64 * 1024 });
  cleanups.push(async () => {
    await m.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  const r = await relay(m);
  const c = new GfsClient({ master: r.addr, secretFile: m.clientKeyFile, masterRetryWindowMs: 20_000 });
  cleanups.push(() => c.close());
  return { m, c, cut: r.cut };
}

describe('changes whose reply was lost with the connection', () => {
  it('an exclusive create answers with the file it made, not EEXIST', async () => {
    const { c, cut } = await setup();
    const dir = await c.mkdir('/d', 0o40755);
    const lost = cut('Create', 'victim');
    const made = await c.create({ parent: dir.ino, name: 'victim' }, 0o100644, undefined, { exclusive: true });
    await lost; // the first reply really was cut off
    expect((await c.lookup(dir.ino, 'victim')).ino).toBe(made.ino);
    expect((await c.readdir(dir.ino)).map((e) => e.name)).toEqual(['victim']);
    // A new call of the same kind is a new request: it runs, and finds the name taken.
    const again = await c.create({ parent: dir.ino, name: 'victim' }, 0o100644, undefined, { exclusive: true }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(GfsError);
    expect((again as GfsError).code).toBe('EEXIST');
  });

  it('a rename succeeds once, not ENOENT on its retry', async () => {
    const { c, cut } = await setup();
    const dir = await c.mkdir('/d', 0o40755);
    const f = await c.create({ parent: dir.ino, name: 'old-name' }, 0o100644);
    const lost = cut('Rename', 'old-name');
    await c.rename({ parent: dir.ino, name: 'old-name' }, { parent: dir.ino, name: 'new-name' });
    await lost;
    expect((await c.lookup(dir.ino, 'new-name')).ino).toBe(f.ino);
    expect((await c.readdir(dir.ino)).map((e) => e.name)).toEqual(['new-name']);
  });

  it('a release drops one open of the file, not two', async () => {
    const { c, cut } = await setup();
    const f = await c.create('/f', 0o100644);
    await c.open(f.ino);
    await c.open(f.ino);
    await c.unlink('/f');
    const lost = cut('Release', '');
    await c.release(f.ino);
    await lost;
    // One open is left: the unlinked file is still there by its inode.
    expect((await c.getattr(f.ino)).ino).toBe(f.ino);
    await c.release(f.ino);
    await expect(c.getattr(f.ino)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an unlink of the last link succeeds, not ENOENT on its retry', async () => {
    const { c, cut } = await setup();
    const dir = await c.mkdir('/d', 0o40755);
    await c.create({ parent: dir.ino, name: 'doomed' }, 0o100644);
    const lost = cut('Unlink', 'doomed');
    await c.unlink({ parent: dir.ino, name: 'doomed' });
    await lost;
    expect((await c.readdir(dir.ino)).map((e) => e.name)).toEqual([]);
  });
});

describe('RequestCache', () => {
  it('runs a call number once per client, and keeps its answer or its error', async () => {
    const cache = new RequestCache();
    let runs = 0;
    const ok = () => Promise.resolve(++runs);
    expect(await cache.run('Create', 'a:1:1', ok)).toBe(1);
    expect(await cache.run('Create', 'a:1:1', ok)).toBe(1);
    expect(await cache.run('Create', 'b:1:1', ok)).toBe(2); // another client
    expect(await cache.run('Create', '', ok)).toBe(3); // no id: runs every time
    expect(await cache.run('Create', '', ok)).toBe(4);
    const fail = () => Promise.reject(new GfsError('EEXIST', 'taken'));
    await expect(cache.run('Create', 'a:2:1', fail)).rejects.toThrow(/taken/);
    await expect(cache.run('Create', 'a:2:1', ok)).rejects.toThrow(/taken/);
    // The same number under another method is a client's bug, not a retry.
    await expect(cache.run('Rename', 'a:2:1', ok)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('gives a retry that comes while the first run is under way the same outcome', async () => {
    const cache = new RequestCache();
    let release!: (v: string) => void;
    let runs = 0;
    const slow = () => (runs++, new Promise<string>((r) => (release = r)));
    const first = cache.run('Create', 'b:1:1', slow);
    const retry = cache.run('Create', 'b:1:1', slow);
    release('made');
    expect(await Promise.all([first, retry])).toEqual(['made', 'made']);
    expect(runs).toBe(1);
  });

  it('forgets the outcomes a client says it has, and those a retry may get past', async () => {
    const cache = new RequestCache();
    for (let seq = 1; seq <= 5; seq++) await cache.run('Create', `c:${seq}:1`, () => Promise.resolve(seq));
    expect(cache.size).toBe(5);
    await cache.run('Create', 'c:6:4', () => Promise.resolve(6)); // 1-3 answered
    expect(cache.size).toBe(3);
    await cache.run('Create', 'c:4:1', () => Promise.resolve('ran again')).then((v) => expect(v).toBe(4)); // an old retry of 4: kept
    await expect(cache.run('Create', 'c:7:7', () => Promise.reject(new GfsError('EHOSTDOWN', 'shutting down', 14)))).rejects.toThrow();
    await Promise.resolve();
    expect(await cache.run('Create', 'c:7:7', () => Promise.resolve('ran again'))).toBe('ran again');
    expect(cache.size).toBe(1);
  });

  it('refuses ids that are not <client>:<seq>:<done>, and keeps at most its bounds', async () => {
    const cache = new RequestCache(2, 60_000, 3);
    for (const bad of ['x'.repeat(200), 'a:1', 'a:b:1', ':1:1', 'a:1:2', 'a:-1:0', 'a:1.5:1']) {
      await expect(cache.run('Create', bad, () => Promise.resolve(1))).rejects.toMatchObject({ code: 'EINVAL' });
    }
    for (let seq = 1; seq <= 10; seq++) await cache.run('Create', `d:${seq}:1`, () => Promise.resolve(seq));
    expect(cache.size).toBe(3);
    await cache.run('Create', 'e:1:1', () => Promise.resolve(1));
    await cache.run('Create', 'f:1:1', () => Promise.resolve(1)); // a third client: the least recent goes
    expect(cache.size).toBe(2);
  });
});
