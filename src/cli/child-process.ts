// Starting gfs daemons as child processes and waiting (bounded) for their ready line.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GfsError } from '../common/errors.js';

export const CLI_PATH = fileURLToPath(new URL('./main.js', import.meta.url));
/** A daemon that has not said it is ready within this long is a failed start. */
export const READY_TIMEOUT_MS = 30_000;
/** After SIGTERM, a child gets this long before SIGKILL. */
export const STOP_GRACE_MS = 10_000;

export interface Child {
  name: string;
  proc: ChildProcess;
  /** The first capture group of the ready pattern (an address or a directory). */
  ready: string;
  /** Everything the child printed on stdout up to its ready line (e.g. its "http on" line). */
  banner?: string;
}

/**
 * Spawns `gfs <args>`; resolves when a stdout line matches `readyRe`. Stderr goes to
 * `stderrFile` (the daemon's own log goes wherever --log-file says).
 */
export async function startChild(name: string, args: string[], readyRe: RegExp, stderrFile: string, env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const errFd = openSync(stderrFile, 'a');
  // Node flags of this process (e.g. `node --cpu-prof dist/cli/main.js up`) reach every daemon,
  // as fork() would pass them: profiling a whole cluster is one flag.
  const proc = spawn(process.execPath, [...process.execArgv, CLI_PATH, ...args], {
    stdio: ['ignore', 'pipe', errFd],
    env: { ...process.env, ...env },
  });
  closeSync(errFd);
  return new Promise<Child>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new GfsError('ETIMEDOUT', `${name} did not become ready within ${READY_TIMEOUT_MS} ms (see ${stderrFile})`));
    }, READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = readyRe.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.off('exit', onExit);
        // Keep draining stdout so the child never blocks on a full pipe.
        resolve({ name, proc, ready: m[m.length - 1]!, banner: out });
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new GfsError('EIO', `${name} exited before it was ready (code ${code}, signal ${signal}); see ${stderrFile}`));
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after the grace period; resolves when the child is gone. */
export function stopChild(child: Child, graceMs = STOP_GRACE_MS): Promise<void> {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}
