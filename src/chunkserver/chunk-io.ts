// Small file I/O helpers for chunk files: whole reads and writes at an offset, and fs errors
// turned into GfsErrors (ENOSPC stays ENOSPC, the rest is EIO).
import type { FileHandle } from 'node:fs/promises';
import { GfsError } from '../common/errors.js';

export function ioError(err: unknown, what: string): GfsError {
  if (err instanceof GfsError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const msg = `${what}: ${(err as Error)?.message ?? String(err)}`;
  return new GfsError(code === 'ENOSPC' ? 'ENOSPC' : 'EIO', msg);
}

export async function readFull(fh: FileHandle, pos: number, n: number): Promise<Buffer> {
  const buf = Buffer.alloc(n); // zeros past EOF, so a short file fails its checksums
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(buf, got, n - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf;
}

export async function writeFull(fh: FileHandle, data: Uint8Array, pos: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, pos + done);
    done += bytesWritten;
  }
}
