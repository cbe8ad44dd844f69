// Which master a command talks to: --master, else $GFS_MASTER, else the address `gfs up`
// wrote under ./.gfs (so commands run next to a `gfs up` just work).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GfsError } from '../common/errors.js';
import { parseAddr } from '../common/rpc.js';

export const DEFAULT_DATA_DIR = './.gfs';
export const MASTER_ADDR_FILE = 'master.addr';

export function resolveMasterAddr(flag?: string, dataDir = DEFAULT_DATA_DIR): string {
  const addr = flag ?? process.env.GFS_MASTER ?? readAddrFile(dataDir);
  if (!addr) {
    throw new GfsError(
      'EINVAL',
      `no master address: pass --master HOST:PORT, set GFS_MASTER, or run next to a \`gfs up\` (${join(dataDir, MASTER_ADDR_FILE)})`,
    );
  }
  parseAddr(addr);
  return addr;
}

function readAddrFile(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, MASTER_ADDR_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
