// Bytes written to the disks that hold the systems' data, for the per-workload telemetry. A
// write workload that ends in fsync costs what its system puts on disk inside the measured
// time: gfs's fsync reaches every replica's disk, while a peer whose chunkservers do not sync
// leaves the data dirty in the page cache, and the kernel writes it during whatever runs next
// (the next workload's `sync` before drop_caches). Counting the disk's writes per workload
// shows which system paid for its data where.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** /proc/diskstats counts sectors of 512 bytes, whatever the device's own sector size. */
const SECTOR_BYTES = 512;

/** Major and minor number of a dev_t as Node's stat reports it (glibc's encoding). */
export function majorMinor(dev: number): { major: number; minor: number } {
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return { major, minor };
}

/**
 * The whole-disk block devices (names as in /proc/diskstats) under the given paths: a
 * partition counts as its disk. Paths on no block device (tmpfs, overlay) are left out, so the
 * result may be empty.
 */
export function diskDevicesOf(paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const { major, minor } = majorMinor(statSync(p).dev);
    const sys = `/sys/dev/block/${major}:${minor}`;
    if (!existsSync(sys)) continue;
    const real = realpathSync(sys);
    out.add(existsSync(join(real, 'partition')) ? basename(dirname(real)) : basename(real));
  }
  return [...out];
}

/** Bytes written so far to the named devices (summed), or undefined when none can be read. */
export function bytesWritten(devices: readonly string[]): number | undefined {
  if (devices.length === 0) return undefined;
  let text: string;
  try {
    text = readFileSync('/proc/diskstats', 'utf8');
  } catch {
    return undefined;
  }
  let sectors = 0;
  let found = 0;
  for (const line of text.split('\n')) {
    // major minor name reads merged sectors ms writes merged sectors-written ...
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !devices.includes(f[2]!)) continue;
    sectors += Number(f[9]);
    found++;
  }
  return found > 0 ? sectors * SECTOR_BYTES : undefined;
}
