// `gfs mount` needs OUR patched build of fuse-native (src/fuse/native.ts refuses the stock
// prebuild). A dev checkout gets it from scripts/setup.sh; an `npm install -g` of the packed
// tarball does not run our install script (npm blocks dependency install scripts by default),
// so the first mount builds it: scripts/build-fuse-native.sh (shipped in the package) patches
// and compiles node_modules/fuse-native in place, installing libfuse-dev & co. when root.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';

/** The package root (dist/cli/ -> ../..). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function fuseNativeDir(): string | undefined {
  try {
    return dirname(createRequire(import.meta.url).resolve('fuse-native/package.json'));
  } catch {
    return undefined;
  }
}

/** Is the fuse-native that this package loads the gfs-patched build? (asked in a child, so no binding stays loaded here) */
function patchedBuildLoads(): boolean {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(require("fuse-native").GFS_PATCH_LEVEL))'], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return r.status === 0 && r.stdout.trim() !== 'undefined' && r.stdout.trim() !== '';
}

export async function ensurePatchedFuse(log: Logger): Promise<void> {
  const fn = fuseNativeDir();
  if (!fn) throw new GfsError('ENOSYS', 'fuse-native is not installed next to gfs; reinstall gfs');
  if (existsSync(join(fn, 'build', 'Release', '.gfs-build-stamp')) && existsSync(join(fn, 'build', 'Release', 'fuse.node'))) return;
  if (patchedBuildLoads()) return;
  const script = join(PACKAGE_ROOT, 'scripts', 'build-fuse-native.sh');
  log.info({ fuseNative: fn, script }, 'building the patched fuse-native (first mount of this installation)');
  process.stderr.write(`gfs: building the patched fuse-native in ${fn} (first mount; needs libfuse-dev, a compiler, root to install them)\n`);
  const r = spawnSync('bash', [script], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, GFS_FUSE_NATIVE_DIR: fn }, timeout: 10 * 60_000 });
  if (r.status !== 0) {
    throw new GfsError('ENOSYS', `could not build the patched fuse-native (exit ${r.status ?? r.signal}); run: sudo bash ${script}`);
  }
}
