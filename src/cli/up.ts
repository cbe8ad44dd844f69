// `gfs up`: a whole cluster on this machine in the foreground: one master and N chunkservers
// on 127.0.0.1, data under --data (kept across runs), logs in <data>/logs, and the mount.
// Ctrl-C or SIGTERM unmounts and stops everything.
import { CLIENT_KEY_FILE, SECRET_FILE } from '../common/cluster-secret.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HTTP_RE, LISTENING_RE, MOUNTED_RE } from './ready-line.js';
import { MASTER_ADDR_FILE } from './master-addr.js';
import { startChild, stopChild, type Child } from './child-process.js';

export interface UpFlags {
  data: string;
  mount: string | false;
  chunkservers: string;
  heartbeatMs?: string;
  chunkSize?: string;
  logLevel?: string;
  /** Master status page port (default: the previous run's, else any free port). */
  httpPort?: string;
  /** false with --no-metrics. */
  metrics?: boolean;
}

/** Where `gfs up` keeps the master's status page URL (its port is reused on the next run). */
export const MASTER_HTTP_FILE = 'master.http';

const httpOf = (c: Child) => (c.banner ? HTTP_RE.exec(c.banner)?.[2] : undefined);

export async function runUp(f: UpFlags): Promise<void> {
  const data = resolve(f.data);
  const logs = join(data, 'logs');
  mkdirSync(logs, { recursive: true });
  const n = Number(f.chunkservers);
  if (!Number.isInteger(n) || n < 1 || n > 32) throw new Error(`--chunkservers must be 1..32, got "${f.chunkservers}"`);
  const children: Child[] = [];
  let stopping = false;

  const stopAll = async () => {
    stopping = true;
    // Mount first (it flushes open files), then chunkservers, then the master.
    for (const c of [...children].reverse()) await stopChild(c);
  };
  const extra = (flag: string, v?: string) => (v ? [flag, v] : []);
  const common = [...extra('--log-level', f.logLevel), ...extra('--heartbeat-ms', f.heartbeatMs), ...(f.metrics === false ? ['--no-metrics'] : [])];

  try {
    const master = await startMasterReusingPort(data, logs, [...common, ...extra('--chunk-size', f.chunkSize)], f.httpPort);
    children.push(master);
    writeFileSync(join(data, MASTER_ADDR_FILE), `${master.ready}\n`);
    const statusUrl = httpOf(master);
    if (statusUrl) writeFileSync(join(data, MASTER_HTTP_FILE), `${statusUrl}\n`);
    for (let i = 1; i <= n; i++) {
      const name = `chunkserver-${i}`;
      children.push(
        await startChild(
          name,
          ['chunkserver', '--data', join(data, `cs${i}`), '--master', master.ready, '--log-file', join(logs, `${name}.log`), '--http-port', '0', ...common, '--secret-file', join(data, 'master', SECRET_FILE)],
          LISTENING_RE,
          join(logs, `${name}.stderr`),
        ),
      );
    }
    let mountDir: string | undefined;
    if (f.mount !== false) {
      mountDir = resolve(f.mount);
      const mount = await startChild(
        'mount',
        [
          'mount',
          '--master',
          master.ready,
          mountDir,
          '--log-file',
          join(logs, 'mount.log'),
          '--metrics-port',
          '0',
          '--secret-file',
          join(data, 'master', CLIENT_KEY_FILE),
          ...extra('--log-level', f.logLevel),
          ...(f.metrics === false ? ['--no-metrics'] : []),
        ],
        MOUNTED_RE,
        join(logs, 'mount.stderr'),
      );
      children.push(mount);
    }
    const lines = [
      `gfs: master ${master.ready} (data ${join(data, 'master')})`,
      ...(statusUrl ? [`gfs: status page ${statusUrl}/ (also /api/status, /metrics, /healthz)`] : []),
      ...children
        .filter((c) => c.name.startsWith('chunkserver'))
        .map((c) => `gfs: ${c.name} ${c.ready}${httpOf(c) ? ` (status ${httpOf(c)}/)` : ''}`),
      ...children.filter((c) => c.name === 'mount' && httpOf(c)).map((c) => `gfs: mount metrics ${httpOf(c)}/metrics`),
      `gfs: cluster secret ${join(data, 'master', SECRET_FILE)} (chunkservers); client key ${join(data, 'master', CLIENT_KEY_FILE)} (mounts, tools)`,
      `gfs: logs in ${logs}`,
      `gfs: master address written to ${join(data, MASTER_ADDR_FILE)} (used by \`gfs status\`)`,
      mountDir ? `gfs: mounted at ${mountDir}` : 'gfs: not mounted (--no-mount)',
      'gfs: press Ctrl-C to unmount and stop',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } catch (err) {
    await stopAll();
    throw err;
  }

  for (const c of children) {
    c.proc.once('exit', (code, signal) => {
      if (stopping) return;
      // A mount exits 0 only when unmounted from outside (fusermount -u): not a failure.
      if (c.name === 'mount' && code === 0) process.stderr.write(`gfs: the mount was unmounted from outside; the cluster keeps running (Ctrl-C stops it)\n`);
      else process.stderr.write(`gfs: ${c.name} exited unexpectedly (code ${code}, signal ${signal}); see ${logs}\n`);
    });
  }
  await new Promise<void>((done) => {
    const onSignal = () => {
      if (stopping) process.exit(130);
      process.stdout.write('gfs: stopping\n');
      stopAll().finally(done);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  process.stdout.write('gfs: stopped\n');
}

/** The master keeps its port across runs when it can, so old addresses stay valid. */
async function startMasterReusingPort(data: string, logs: string, extra: string[], httpFlag?: string): Promise<Child> {
  let port = '0';
  try {
    port = readFileSync(join(data, MASTER_ADDR_FILE), 'utf8').trim().split(':').pop() || '0';
  } catch {
    // first run
  }
  let httpPort = httpFlag ?? '0';
  if (httpFlag === undefined) {
    try {
      httpPort = readFileSync(join(data, MASTER_HTTP_FILE), 'utf8').trim().split(':').pop() || '0';
    } catch {
      // first run
    }
  }
  const args = (p: string, h: string) => ['master', '--data', join(data, 'master'), '--port', p, '--http-port', h, '--log-file', join(logs, 'master.log'), ...extra];
  try {
    return await startChild('master', args(port, httpPort), LISTENING_RE, join(logs, 'master.stderr'));
  } catch (err) {
    if (port === '0' && (httpPort === '0' || httpFlag !== undefined)) throw err;
    return startChild('master', args('0', httpFlag ?? '0'), LISTENING_RE, join(logs, 'master.stderr'));
  }
}
