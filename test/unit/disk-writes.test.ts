// The benchmark's per-workload disk writes: the device under a directory is found (a partition
// counts as its disk), and a file written and fsynced there shows up in its written bytes.
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesWritten, diskDevicesOf, majorMinor } from '../../src/bench/disk-writes.js';

const dir = mkdtempSync(join(tmpdir(), 'gfs-disk-writes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether the directory sits on a block device at all (not tmpfs or overlay). */
function onBlockDevice(p: string): boolean {
  const { major, minor } = majorMinor(statSync(p).dev);
  return existsSync(`/sys/dev/block/${major}:${minor}`);
}

describe('disk writes', () => {
  it('counts an fsynced file under the directory as written to its disk', () => {
    const devs = diskDevicesOf([dir]);
    if (!onBlockDevice(dir)) {
      // tmpfs and the like: no disk to watch, and nothing is claimed.
      expect(devs).toEqual([]);
      expect(bytesWritten(devs)).toBeUndefined();
      return;
    }
    expect(devs).toHaveLength(1);
    expect(existsSync(`/sys/block/${devs[0]}`), `${devs[0]} is a whole disk`).toBe(true);
    const before = bytesWritten(devs)!;
    expect(before).toBeGreaterThanOrEqual(0);
    const fd = openSync(join(dir, 'f'), 'w');
    const block = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 8; i++) writeSync(fd, block);
    fsyncSync(fd);
    closeSync(fd);
    expect(bytesWritten(devs)! - before).toBeGreaterThanOrEqual(8 << 20);
  });

  it('a path that does not exist, or no device, gives nothing', () => {
    expect(diskDevicesOf([join(dir, 'missing')])).toEqual([]);
    expect(bytesWritten([])).toBeUndefined();
    expect(bytesWritten(['no-such-disk'])).toBeUndefined();
  });
});
