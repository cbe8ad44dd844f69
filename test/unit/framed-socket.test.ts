// Both ends of a framed connection read plain TCP into one reused buffer (net's onread): the
// accepting end through a socket adopted from the server's, which must still count and close
// like any other connection.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { connectFramed, listenFramed, READ_PIECE_BYTES } from '../../src/common/framed-socket.js';

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

describe('framed sockets', () => {
  it('an accepted connection reads into one reused buffer, its bytes intact, and counts as open until it closes', async () => {
    const got: Buffer[] = [];
    const backings = new Set<ArrayBufferLike>();
    let serverSide: net.Socket | undefined;
    const listener = await listenFramed('127.0.0.1', 0, undefined, 'test', (socket) => {
      serverSide = socket;
      return (piece) => {
        backings.add(piece.buffer);
        got.push(Buffer.from(piece)); // a piece is valid only during the call
      };
    });
    const sent = Buffer.alloc(3 * READ_PIECE_BYTES + 12345);
    for (let i = 0; i < sent.length; i++) sent[i] = (i * 131 + (i >> 12)) & 0xff;
    const client = net.connect(listener.port, '127.0.0.1');
    await new Promise<void>((r) => client.once('connect', () => r()));
    for (let at = 0; at < sent.length; at += 100_000) {
      client.write(sent.subarray(at, at + 100_000));
      await new Promise((r) => setImmediate(r));
    }
    await until(() => got.reduce((n, b) => n + b.length, 0) >= sent.length, 'all bytes');
    expect(Buffer.concat(got).equals(sent)).toBe(true);
    expect(got.length).toBeGreaterThan(1);
    expect(backings.size).toBe(1);
    expect(listener.connections).toBe(1);
    // Replies go out on the adopted socket.
    const back = new Promise<string>((r) => client.once('data', (b) => r(b.toString())));
    serverSide!.write('pong');
    expect(await back).toBe('pong');
    client.destroy();
    await until(() => listener.connections === 0, 'the connection to close');
    await listener.close();
  });

  it('connections sharing the read buffer each get their own bytes, interleaved', async () => {
    const got = new Map<net.Socket, Buffer[]>();
    const listener = await listenFramed('127.0.0.1', 0, undefined, 'test', (socket) => {
      const mine: Buffer[] = [];
      got.set(socket, mine);
      return (piece) => void mine.push(Buffer.from(piece));
    });
    const streams = [1, 2, 3].map((seed) => Buffer.alloc(2 * READ_PIECE_BYTES + seed * 1000, seed));
    const clients = await Promise.all(
      streams.map(() => new Promise<net.Socket>((r) => { const c = net.connect(listener.port, '127.0.0.1', () => r(c)); })),
    );
    for (let at = 0; at < streams[2]!.length; at += 50_000) {
      clients.forEach((c, i) => c.write(streams[i]!.subarray(at, at + 50_000)));
      await new Promise((r) => setImmediate(r));
    }
    const total = streams.reduce((n, b) => n + b.length, 0);
    await until(() => [...got.values()].reduce((n, l) => n + l.reduce((m, b) => m + b.length, 0), 0) >= total, 'all bytes');
    const received = [...got.values()].map((l) => Buffer.concat(l));
    expect(received.map((b) => b.length).sort()).toEqual(streams.map((b) => b.length).sort());
    for (const b of received) expect(b.every((x) => x === b[0]) && b.length === streams[b[0]! - 1]!.length).toBe(true);
    for (const c of clients) c.destroy();
    await listener.close();
  });

  it('a connecting end with onPiece reads into one reused buffer too', async () => {
    const server = net.createServer((s) => s.end(Buffer.alloc(2 * READ_PIECE_BYTES + 7, 9)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const backings = new Set<ArrayBufferLike>();
    let bytes = 0;
    const socket = connectFramed(`127.0.0.1:${(server.address() as net.AddressInfo).port}`, undefined, (piece) => {
      backings.add(piece.buffer);
      bytes += piece.length;
      expect(piece.every((b) => b === 9)).toBe(true);
    });
    await new Promise<void>((r) => socket.once('close', () => r()));
    server.close();
    expect(bytes).toBe(2 * READ_PIECE_BYTES + 7);
    expect(backings.size).toBe(1);
  });
});
