// On-demand CPU profiles of a running daemon, for finding where a workload's time goes without
// profiling the whole life of the process: with GFS_PROFILE_DIR set, SIGUSR2 starts a profile
// and the next SIGUSR2 writes it to GFS_PROFILE_DIR/<role>-<pid>-<n>.cpuprofile (open it in
// Chrome DevTools or any .cpuprofile viewer). Off, and free, unless the variable is set.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function profileOnSignal(role: string): void {
  const dir = process.env.GFS_PROFILE_DIR;
  if (!dir) return;
  let session: Session | undefined;
  let n = 0;
  process.on('SIGUSR2', () => {
    if (!session) {
      session = new Session();
      session.connect();
      session.post('Profiler.enable', () => session!.post('Profiler.start'));
      return;
    }
    const s = session;
    session = undefined;
    s.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(dir, `${role}-${process.pid}-${++n}.cpuprofile`), JSON.stringify(res.profile));
      s.disconnect();
    });
  });
}
