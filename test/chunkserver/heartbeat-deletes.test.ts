// The master's delete orders run beside the heartbeat loop: a long batch must not silence the
// beats, or the master takes the server for suspect (seen after an rm -rf of 5000 files).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admission } from '../../src/chunkserver/admission.js';
import type { ChunkStore } from '../../src/chunkserver/chunk-store.js';
import { HeartbeatLoop } from '../../src/chunkserver/heartbeat.js';
import { silentLogger } from '../../src/common/logger.js';
import { startFakeMaster, until, type FakeMaster } from './helpers.js';

let master: FakeMaster;
let dir: string;

beforeAll(async () => {
  master = await startFakeMaster();
  dir = mkdtempSync(join(tmpdir(), 'gfs-hb-'));
});

afterAll(async () => {
  await master?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('heartbeat and the master delete orders', () => {
  it('keeps beating while a delete batch is still running, and stop() waits for it', async () => {
    let finish!: () => void;
    const deleting = new Promise<void>((r) => (finish = r));
    const asked: number[][] = [];
    const store = {
      used: 0,
      chunkCount: 0,
      report: () => [],
      takeCorrupt: () => [],
      requeueCorrupt: () => undefined,
      delete: async (handles: number[]) => {
        asked.push(handles);
        await deleting;
        return handles.length;
      },
    } as unknown as ChunkStore;
    const hb = new HeartbeatLoop({
      master: master.addr,
      store,
      admission: { inFlight: 0 } as unknown as Admission,
      addr: '127.0.0.1:1',
      serverIdFile: join(dir, 'server-id'),
      capacity: async () => 1 << 30,
      heartbeatMs: 30,
      log: silentLogger,
    });
    await hb.start();
    await until(() => master.registers.length === 1 && master.beats.length > 0, 'first beat');
    const id = master.registers[0]!.serverId || 'cs-1';
    master.deleteNext.set(id, [11, 12, 13]);
    await until(() => asked.length === 1, 'delete started');
    const beatsAtDelete = master.beats.length;
    await until(() => master.beats.length >= beatsAtDelete + 3, 'beats during the delete');
    let stopped = false;
    const stop = hb.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false);
    finish();
    await stop;
    expect(asked).toEqual([[11, 12, 13]]);
  });
});
