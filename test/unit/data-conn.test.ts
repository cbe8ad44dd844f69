// The data channel's calling side against a stand-in server that says Hello and then answers
// only what the test tells it to: deadlines fail silent requests, and the connection carries on.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { okCodec, readCodec } from '../../src/common/data-codec.js';
import { DataConnPool, DEADLINE_SWEEP_MS } from '../../src/common/data-conn.js';
import { FrameReader, framePrefix, Kind, type Frame } from '../../src/common/data-frame.js';

const servers: net.Server[] = [];
const pools: DataConnPool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
  for (const s of servers.splice(0)) s.close();
});

/** A server that answers Hello, then calls `onRequest` for every other frame. */
async function standIn(onRequest: (f: Frame, reply: (id: number, payload?: Buffer) => void) => void): Promise<string> {
  const server = net.createServer((sock) => {
    const reply = (id: number, payload = Buffer.alloc(0)) => {
      sock.write(framePrefix(Kind.Ok, id, okCodec.encode({ serverId: 'x' }), payload.length));
      if (payload.length) sock.write(payload);
    };
    const reader = new FrameReader((f) => (f.kind === Kind.Hello ? reply(f.id) : onRequest(f, reply)));
    sock.on('data', (c: Buffer) => reader.push(c));
    sock.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

const read = (pool: DataConnPool, addr: string, handle: number, timeoutMs: number) =>
  pool.request(addr, Kind.Read, readCodec.encode({ handle, version: 1, offset: 0, length: 4 }), undefined, timeoutMs, `read ${handle}`);

describe('data connection deadlines', () => {
  it('a request with no answer fails with ETIMEDOUT soon after its deadline; answered ones are not disturbed', async () => {
    const addr = await standIn((f, reply) => {
      if (readCodec.decode(f.header).handle !== 13) reply(f.id, Buffer.from('data'));
    });
    const pool = new DataConnPool();
    pools.push(pool);
    expect((await read(pool, addr, 1, 5_000)).payload.toString()).toBe('data');
    const t = performance.now();
    const silent = read(pool, addr, 13, 300).then(
      () => 'answered',
      (e: { code: string; message: string }) => `${e.code} ${e.message}`,
    );
    const ok = await read(pool, addr, 2, 5_000);
    expect(ok.payload.toString()).toBe('data');
    expect(await silent).toMatch(/^ETIMEDOUT ETIMEDOUT: read 13: no answer within 300 ms/);
    const took = performance.now() - t;
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(300 + DEADLINE_SWEEP_MS * 5);
    // A timed-out read with no buffer of the caller's leaves the connection usable.
    expect((await read(pool, addr, 3, 5_000)).payload.toString()).toBe('data');
  });
});

describe('data connection pieces', () => {
  it('every reply keeps its bytes though the socket reads all of them into one reused buffer', async () => {
    // Replies of 1 byte to 600 KiB, many per socket read and many spanning reads; each payload
    // is a pattern of its handle, checked after every reply has arrived.
    const sizes = [1, 100, 4096, 70_000, 13, 300_000, 614_400, 5, 262_144, 262_131, 64 * 1024];
    const body = (h: number) => Buffer.alloc(sizes[h % sizes.length]!, h & 0xff);
    const addr = await standIn((f, reply) => reply(f.id, body(readCodec.decode(f.header).handle)));
    const pool = new DataConnPool();
    pools.push(pool);
    const n = 200;
    const replies = await Promise.all(Array.from({ length: n }, (_, h) => read(pool, addr, h, 10_000)));
    for (let h = 0; h < n; h++) expect(replies[h]!.payload.equals(body(h)), `reply ${h}`).toBe(true);
  });

  it('a transient reader copies whole frames out of the piece, into their sink when one is named', () => {
    const frames: Frame[] = [];
    const sinkBuf = Buffer.alloc(8);
    const reader = new FrameReader(
      (f) => frames.push(f),
      { sink: (_k, id, _h, bytes) => (id === 2 ? { buf: sinkBuf.subarray(0, bytes), release: () => undefined } : undefined) },
      true,
    );
    const frame = (id: number, payload: string) => Buffer.concat([framePrefix(Kind.Ok, id, Buffer.from('hdr'), payload.length), Buffer.from(payload)]);
    const piece = Buffer.concat([frame(1, 'first'), frame(2, 'second'), frame(3, 'thi')]);
    reader.push(piece.subarray(0, piece.length - 2)); // frame 3 is cut: its payload spans pieces
    piece.fill(0); // what the socket's next read does to the buffer
    reader.push(Buffer.from('hi'));
    expect(frames.map((f) => [f.id, f.header.toString(), f.payload.toString()])).toEqual([
      [1, 'hdr', 'first'],
      [2, 'hdr', 'second'],
      [3, 'hdr', 'thi'],
    ]);
    expect(frames[1]!.payload.buffer).toBe(sinkBuf.buffer);
  });
});
