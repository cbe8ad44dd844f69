// Frames written in one tick leave together, in the order they were written.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FrameReader, Kind, type Frame } from '../../src/common/data-frame.js';
import { FrameWriter } from '../../src/common/frame-writer.js';

/** A sink that records each call that reached it, as the kernel would see writes. */
function sink(): { out: Writable; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk);
      cb();
    },
    writev(chunks, cb) {
      writes.push(Buffer.concat(chunks.map((c) => c.chunk as Buffer)));
      cb();
    },
  });
  return { out, writes };
}

describe('FrameWriter', () => {
  it('sends the frames of one tick in one write, in order, and each payload intact', async () => {
    const { out, writes } = sink();
    const w = new FrameWriter(out);
    const sent: number[] = [];
    for (let id = 1; id <= 100; id++) {
      w.write(Kind.Read, id, Buffer.from([id]), id % 10 === 0 ? Buffer.alloc(1000, id) : undefined, () => sent.push(id));
    }
    expect(writes).toHaveLength(0); // held until the end of the tick
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(1);
    expect(sent).toHaveLength(100);
    const frames: Frame[] = [];
    new FrameReader((f) => frames.push(f)).push(writes[0]!);
    expect(frames.map((f) => f.id)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (const f of frames) {
      expect(f.header[0]).toBe(f.id);
      expect(f.payload.length).toBe(f.id % 10 === 0 ? 1000 : 0);
      if (f.payload.length) expect(f.payload.every((b) => b === f.id)).toBe(true);
    }
  });

  it('starts a new batch in the next tick', async () => {
    const { out, writes } = sink();
    const w = new FrameWriter(out);
    w.write(Kind.Read, 1, Buffer.alloc(1));
    await new Promise((r) => setImmediate(r));
    w.write(Kind.Read, 2, Buffer.alloc(1));
    w.write(Kind.Read, 3, Buffer.alloc(1));
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(2);
  });
});
