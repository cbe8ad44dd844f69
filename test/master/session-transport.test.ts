// Master calls over the session listener (framed TCP), against an in-process master with
// real sockets: what a client uses by default, the gRPC stream it falls back to, refusals and
// errors as a unary call gives them, and a master that moved to another session port.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GfsClient } from '../../src/client/client.js';
import { GfsError } from '../../src/common/errors.js';
import { type MasterHandle, startMaster } from '../../src/master/master.js';

const dirs: string[] = [];
const masters: MasterHandle[] = [];
const clients: GfsClient[] = [];

async function master(opts: { sessionPort?: number | false; port?: number; dataDir?: string } = {}): Promise<MasterHandle & { dataDir: string }> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'gfs-session-')));
  if (!dirs.includes(dataDir)) dirs.push(dataDir);
  const m = await startMaster({ dataDir, port: opts.port ?? 0, sessionPort: opts.sessionPort, chunkSize: 64 * 1024 });
  masters.push(m);
  return Object.assign(m, { dataDir });
}

function client(m: MasterHandle, extra: Partial<ConstructorParameters<typeof GfsClient>[0]> = {}): GfsClient {
  const c = new GfsClient({ master: m.addr, secretFile: m.clientKeyFile, masterRetryWindowMs: 20_000, ...extra });
  clients.push(c);
  return c;
}

/** The GfsError a call fails with (a call that succeeds fails the test). */
const errOf = (p: Promise<unknown>): Promise<GfsError> =>
  p.then(
    () => expect.fail('expected a failure'),
    (err: unknown) => (expect(err).toBeInstanceOf(GfsError), err as GfsError),
  );

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const m of masters.splice(0)) await m.stop();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('master sessions over TCP', () => {
  it('carry a client\'s calls by default, with errors as a unary call gives them', async () => {
    const m = await master();
    expect(m.sessions?.port).toBeGreaterThan(0);
    const c = client(m);
    const dir = await c.mkdir('/d', 0o40755);
    await Promise.all(Array.from({ length: 50 }, (_, i) => c.create(`/d/f${i}`, 0o100644)));
    expect((await c.readdir(dir.ino)).map((e) => e.name).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `f${i}`).sort());
    expect(m.sessions?.connections).toBe(1);
    const e = await errOf(c.mkdir('/d', 0o40755));
    expect(e.code).toBe('EEXIST');
    expect(e.message).toMatch(/d/);
    expect((await errOf(c.lookup(dir.ino, 'nope'))).code).toBe('ENOENT');
  });

  it('refuse a wrong credential with the server\'s reason', async () => {
    const m = await master();
    const other = await master();
    // other's key is not a credential of m.
    const c = client(m, { secretFile: other.clientKeyFile, masterRetryWindowMs: 2_000 });
    const e = await errOf(c.mkdir('/x', 0o40755));
    expect(e.message).toMatch(/wrong cluster secret/);
  });

  it('fall back to the gRPC stream when the master has no listener, or when told to', async () => {
    const m = await master({ sessionPort: false });
    expect(m.sessions).toBeUndefined();
    const c = client(m);
    expect((await c.mkdir('/a', 0o40755)).ino).toBeGreaterThan(1);
    const m2 = await master();
    const c2 = client(m2, { masterSession: 'grpc' });
    expect((await c2.mkdir('/b', 0o40755)).ino).toBeGreaterThan(1);
    expect(m2.sessions?.connections).toBe(0);
  });

  it('follow a master restarted on another session port', async () => {
    const m = await master();
    const c = client(m);
    await c.mkdir('/before', 0o40755);
    const { port } = m;
    const oldSessionPort = m.sessions!.port;
    await m.stop();
    masters.splice(masters.indexOf(m), 1);
    const again = await master({ port, dataDir: m.dataDir });
    expect(again.sessions!.port).not.toBe(oldSessionPort);
    const d = await c.mkdir('/after', 0o40755); // the old session port refuses; the client asks again
    expect(d.ino).toBeGreaterThan(1);
    expect(again.sessions?.connections).toBe(1);
  });
});
