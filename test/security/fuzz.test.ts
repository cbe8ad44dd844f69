// Issue 7 acceptance: hostile input. Thousands of random, truncated, oversized and
// structurally valid but absurd messages go to every RPC of the master and of every
// chunkserver (raw gRPC with identity serializers), with no credential, a wrong one, or a
// client's, while a normal client workload runs alongside. Afterwards: every daemon still runs
// and serves, its memory stayed bounded, nothing outside the data dirs changed (a canary dir),
// and the workload read back exactly what it wrote. Seeded: GFS_FUZZ_SEED=<n> reproduces a run.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GfsClient } from '../../src/client/client.js';
import { authInterceptor } from '../../src/common/auth.js';
import { clientKeysOf, readCredential } from '../../src/common/cluster-secret.js';
import { proto } from '../../src/common/proto.js';
import { startProcCluster, waitFor, type ProcCluster } from '../helpers/proc-cluster.js';

const MiB = 1024 * 1024;
const SEED = Number(process.env.GFS_FUZZ_SEED ?? 20240607);
const PER_DAEMON = Number(process.env.GFS_FUZZ_MESSAGES ?? 1500);
const RSS_BOUND_MIB = 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** mulberry32: small, fast, seeded. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, bytes, pick };
}
type Rng = ReturnType<typeof rng>;

// Numbers and strings a fuzzer likes. Small positive integers are left out on purpose: they
// would name the workload's own inodes and chunks, and a client may legitimately change those.
const NUMBERS = [0, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 52, Number.MAX_SAFE_INTEGER, 987_654_321, 5e9];
const STRINGS = ['', '..', '../../../../etc/passwd', '/fuzz', '/fuzz/a/../../..', '/fuzz/\u0000x', 'x'.repeat(5000), '/fuzz/' + 'n'.repeat(300), '\u{1F600}', '127.0.0.1:1', 'bogus:host:port', '%s%n'];

interface FieldDesc {
  name: string;
  type: string;
  label?: string;
  typeName?: string;
}
interface MessageDesc {
  field?: FieldDesc[];
}

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** A structurally valid message of `desc` with random field values. */
function randomMessage(r: Rng, desc: MessageDesc, types: Map<string, MessageDesc>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of desc.field ?? []) {
    if (r.next() < 0.3) continue;
    const one = (): unknown => {
      switch (f.type) {
        case 'TYPE_STRING':
          return r.next() < 0.8 ? r.pick(STRINGS) : r.bytes(r.int(64)).toString('latin1');
        case 'TYPE_BYTES':
          return r.next() < 0.1 ? Buffer.alloc(0) : r.bytes(r.int(r.next() < 0.1 ? 70_000 : 512));
        case 'TYPE_BOOL':
          return r.next() < 0.5;
        case 'TYPE_ENUM':
          return r.int(4);
        case 'TYPE_MESSAGE': {
          const t = types.get((f.typeName ?? '').replace(/^\./, ''));
          return t && depth < 3 ? randomMessage(r, t, types, depth + 1) : {};
        }
        default:
          return r.pick(NUMBERS);
      }
    };
    out[camel(f.name)] = f.label === 'LABEL_REPEATED' ? Array.from({ length: r.next() < 0.05 ? 2000 : r.int(4) }, one) : one();
  }
  return out;
}

interface Target {
  service: 'Master' | 'ChunkServer';
  addr: string;
}

interface Stats {
  sent: number;
  answered: Record<string, number>;
}

describe('hostile input (fuzz) while a workload runs', () => {
  let c: ProcCluster;
  let client: GfsClient;
  let canary: string;
  let canaryBefore: string;

  const listing = (dir: string) =>
    readdirSync(dir)
      .sort()
      .map((n) => {
        const st = statSync(join(dir, n));
        return `${n} ${st.size} ${st.mtimeMs} ${sha(readFileSync(join(dir, n)))}`;
      })
      .join('\n');

  beforeAll(async () => {
    canary = mkdtempSync(join(tmpdir(), 'gfs-canary-'));
    for (const n of ['passwd', 'chunk', '1.chunk', 'data']) writeFileSync(join(canary, n), randomBytes(100));
    canaryBefore = listing(canary);
    // Names a careless server might turn into paths: the canary, absolute and climbing up.
    STRINGS.push(`${canary}/passwd`, `../../../..${canary}/1.chunk`, `${canary}`, `/../..${canary}/data`);
    c = await startProcCluster({ chunkservers: 3, chunkSize: MiB });
    client = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 3, '3 live chunkservers');
  });
  afterAll(async () => {
    await client?.close();
    await c?.stop();
    rmSync(canary, { recursive: true, force: true });
  });

  it(
    'no daemon crashes or grows without bound, nothing outside the data dirs changes, the workload is correct',
    async () => {
      const r = rng(SEED);
      console.log(`fuzz seed ${SEED} (GFS_FUZZ_SEED), ${PER_DAEMON} messages per daemon`);
      const pkg = proto().gfs as unknown as Record<string, { service: grpc.ServiceDefinition }>;
      const types = new Map<string, MessageDesc>();
      for (const svc of ['Master', 'ChunkServer']) {
        for (const m of Object.values(pkg[svc]!.service)) {
          const def = m as unknown as { requestType: { type: MessageDesc & { name: string } }; responseType: { type: MessageDesc & { name: string } } };
          types.set(`gfs.${def.requestType.type.name}`, def.requestType.type);
        }
      }
      // Nested message types (Cred, TimeSet, ChunkReport, ...) are reachable from the package.
      for (const [name, v] of Object.entries(pkg)) {
        const t = (v as unknown as { type?: MessageDesc }).type;
        if (t && !types.has(`gfs.${name}`)) types.set(`gfs.${name}`, t);
      }

      const goodAuth = `client:${clientKeysOf(readCredential(c.clientKeyFile)).clientProof}`;
      const wrongAuth = `client:${randomBytes(32).toString('hex')}`;
      const Generic = grpc.makeGenericClientConstructor({}, 'Fuzz');
      const opts = { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 };
      const channels = new Map<string, grpc.Client[]>();
      const clientsFor = (addr: string) => {
        let cs = channels.get(addr);
        if (!cs) {
          cs = [
            new Generic(addr, grpc.credentials.createInsecure(), opts),
            new Generic(addr, grpc.credentials.createInsecure(), { ...opts, interceptors: [authInterceptor(wrongAuth)] }),
            new Generic(addr, grpc.credentials.createInsecure(), { ...opts, interceptors: [authInterceptor(goodAuth)] }),
          ];
          channels.set(addr, cs);
        }
        return cs;
      };
      const id = (b: Buffer) => b;
      const stats: Stats = { sent: 0, answered: {} };
      const note = (err: grpc.ServiceError | null | undefined) => {
        const k = err ? grpc.status[err.code] ?? String(err.code) : 'OK';
        stats.answered[k] = (stats.answered[k] ?? 0) + 1;
      };

      const oneMessage = (t: Target, method: string, def: grpc.MethodDefinition<unknown, unknown>): Buffer => {
        const kind = r.next();
        if (kind < 0.3) return r.bytes(r.int(r.next() < 0.1 ? 4096 : 96)); // random bytes
        let valid: Buffer;
        try {
          valid = def.requestSerialize(randomMessage(r, (def as unknown as { requestType: { type: MessageDesc } }).requestType.type, types));
        } catch {
          valid = r.bytes(r.int(64));
        }
        if (kind < 0.5) return valid.subarray(0, r.int(valid.length + 1)); // truncated
        if (kind < 0.52 && t.service === 'ChunkServer' && method === 'PushData') return Buffer.alloc(18 * MiB, 7); // oversized
        if (kind < 0.503) return Buffer.alloc(18 * MiB, 1); // oversized, any method (rarely: memory)
        return valid;
      };

      const fire = (t: Target, method: string, def: grpc.MethodDefinition<unknown, unknown>): Promise<void> => {
        const cl = r.pick(clientsFor(t.addr));
        const deadline = Date.now() + 3_000;
        const path = def.path;
        stats.sent++;
        if (!def.requestStream && !def.responseStream) {
          const msg = oneMessage(t, method, def);
          return new Promise((res) => cl.makeUnaryRequest(path, id, id, msg, new grpc.Metadata(), { deadline }, (err) => (note(err), res())));
        }
        if (!def.requestStream && def.responseStream) {
          const msg = oneMessage(t, method, def);
          return new Promise((res) => {
            const call = cl.makeServerStreamRequest(path, id, id, msg, new grpc.Metadata(), { deadline });
            call.on('data', () => undefined);
            call.on('error', (e: grpc.ServiceError) => (note(e), res()));
            call.on('end', () => (note(null), res()));
          });
        }
        return new Promise((res) => {
          const call = cl.makeClientStreamRequest(path, id, id, new grpc.Metadata(), { deadline }, (err) => (note(err), res()));
          call.on('error', () => undefined);
          const n = 1 + r.int(3);
          for (let i = 0; i < n; i++) call.write(oneMessage(t, method, def));
          if (r.next() < 0.8) call.end();
          else setTimeout(() => call.cancel(), r.int(200));
        });
      };

      // The workload: files of various sizes written, read back and checked, again and again.
      const expected = new Map<string, string>();
      let stop = false;
      const workload = (async () => {
        await client.mkdir('/work', 0o755);
        for (let i = 0; !stop || i < 8; i++) {
          const data = randomBytes(1 + Math.floor(Math.random() * 2.5 * MiB));
          const path = `/work/f${i % 12}`;
          await client.writeFile(path, data);
          expected.set(path, sha(data));
          const back = await client.readFile(path);
          if (sha(back) !== sha(data)) throw new Error(`workload: ${path} read back different data`);
        }
      })();

      const targets: Target[] = [{ service: 'Master', addr: c.master.addr }, ...c.chunkservers.map((p) => ({ service: 'ChunkServer' as const, addr: p.addr }))];
      const pids = [c.master, ...c.chunkservers].map((p) => p.proc.pid!);
      let peakRss = 0;
      const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      const sampler = setInterval(() => {
        for (const pid of pids) peakRss = Math.max(peakRss, rssOf(pid));
      }, 200);
      try {
        await Promise.all(
          targets.map(async (t) => {
            const methods = Object.entries(pkg[t.service]!.service);
            const inflight = new Set<Promise<void>>();
            for (let i = 0; i < PER_DAEMON; i++) {
              const [name, def] = methods[i % methods.length]!; // every RPC, round robin
              const p = fire(t, name, def as grpc.MethodDefinition<unknown, unknown>).finally(() => inflight.delete(p));
              inflight.add(p);
              if (inflight.size >= 32) await Promise.race(inflight);
            }
            await Promise.all(inflight);
          }),
        );
      } finally {
        stop = true;
        clearInterval(sampler);
      }
      await workload;
      for (const cs of channels.values()) for (const cl of cs) cl.close();
      console.log(`fuzz: ${stats.sent} messages, answers ${JSON.stringify(stats.answered)}, peak daemon RSS ${Math.round(peakRss)} MiB`);

      expect(stats.sent).toBe(PER_DAEMON * targets.length);
      // Every daemon is alive, and answers.
      for (const p of [c.master, ...c.chunkservers]) expect(p.proc.exitCode, p.name).toBeNull();
      expect(peakRss).toBeLessThan(RSS_BOUND_MIB);
      const st = await client.clusterStatus();
      expect(st.servers.filter((s) => s.state === 'alive')).toHaveLength(3);
      // Nothing outside the data dirs changed.
      expect(listing(canary)).toBe(canaryBefore);
      // The workload's data is exactly what it wrote.
      for (const [path, sum] of expected) expect(sha(await client.readFile(path)), path).toBe(sum);
    },
    300_000,
  );
});
