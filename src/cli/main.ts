#!/usr/bin/env node
// The `gfs` command: every role of the system and its tools behind one entry point.
import { Command, Option } from 'commander';
import { GfsError } from '../common/errors.js';
import { DEFAULT_DATA_DIR, resolveMasterAddr } from './master-addr.js';
import { applyConfigLayers } from './config-file.js';
import { addSecurityOptions } from './security-flags.js';
import { applyMallocDefaults } from '../common/malloc-tuning.js';
import { profileOnSignal } from '../common/profile-signal.js';

// Chunkservers and the mount do their disk and checksum work on libuv's thread pool; its
// default of 4 threads queues fsyncs behind reads. Must be set before the pool first runs.
process.env.UV_THREADPOOL_SIZE ??= '16';
// Page faults are expensive here; every daemon this process starts keeps freed memory (malloc-tuning.ts).
applyMallocDefaults();
// GFS_PROFILE_DIR=dir: SIGUSR2 starts and stops a CPU profile of this process (profile-signal.ts).
profileOnSignal(process.argv[2] ?? 'gfs');

const program = new Command();
program.name('gfs').description('A GFS-style distributed file system, mounted through FUSE').showHelpAfterError();
// Flags win over GFS_<FLAG> environment variables, which win over --config FILE (config-file.ts).
program.hook('preAction', (_program, action) => applyConfigLayers(action));
const CONFIG_HELP = 'JSON file of flag values (also $GFS_CONFIG); flags > GFS_<FLAG> env > file';

program
  .command('up')
  .description('run a master, N chunkservers and the mount on this machine, in the foreground')
  .option('--data <dir>', 'where all data and logs live (kept across runs)', DEFAULT_DATA_DIR)
  .option('--mount <dir>', 'mount point', './mnt')
  .option('--no-mount', 'do not mount')
  .option('--chunkservers <n>', 'number of chunkservers', '3')
  .option('--heartbeat-ms <ms>', 'chunkserver heartbeat interval')
  .option('--chunk-size <bytes>', 'chunk size (default 64 MiB)')
  .option('--log-level <level>', 'trace|debug|info|warn|error')
  .option('--http-port <port>', 'master status page port (default: the previous run\'s, else any free port)')
  .option('--no-metrics', 'no per-request metrics in any daemon (overhead measurement)')
  .option('--config <file>', CONFIG_HELP)
  .action(async (o) => (await import('./up.js')).runUp(o));

program
  .command('master')
  .description('run the master')
  .option('--data <dir>', 'metadata directory', `${DEFAULT_DATA_DIR}/master`)
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <port>', 'gRPC port (0 = any free port)', '0')
  .option('--session-port <port>', 'session port: master calls as frames over plain TCP, told to clients over gRPC (0 = any free port)', '0')
  .option('--no-session-port', 'no session port (clients send master calls over a gRPC stream)')
  .option('--chunk-size <bytes>', 'chunk size (default 64 MiB)')
  .option('--replication <n>', 'default replication goal', '3')
  .option('--heartbeat-ms <ms>', 'heartbeat interval told to chunkservers')
  .option('--suspect-after-ms <ms>', 'silence before a chunkserver is suspect')
  .option('--dead-after-ms <ms>', 'silence before a chunkserver is dead')
  .option('--gc-delay-ms <ms>', 'the chunks of deleted files wait this long before chunkservers drop them (default 5000)')
  .option('--max-clones <n>', 're-replication/rebalancing clones in flight cluster-wide (default 4)')
  .option('--max-clones-per-server <n>', 'clones reading from, and writing to, one chunkserver at once (default 2 each)')
  .option('--clone-bytes-per-sec <n>', 'bandwidth bound of one clone (default 64 MiB/s)')
  .option('--rebalance-moves <n>', 'rebalancing moves in flight; 0 disables rebalancing (default 2)')
  .option('--rebalance-bound <fraction>', 'rebalance until servers are within this fraction of the average (default 0.1)')
  .addOption(new Option('--sync-mode <mode>', 'operation log: background = answer once written (survives a master crash), fdatasync right behind (a client fsync waits for it); group = answer after a shared fdatasync; each = one fdatasync per change').choices(['background', 'group', 'each']).default('background'))
  .option('--checkpoint-bytes <bytes>', 'checkpoint when the operation log passes this size (default 64 MiB)')
  .option('--log-file <file>', 'JSON log file (default: stderr)')
  .option('--log-level <level>', 'trace|debug|info|warn|error')
  .option('--http-port <port>', 'status page, /api/status, /metrics, /healthz (0 = any free port)', '0')
  .option('--http-host <host>', 'HTTP listen address (default: --host)')
  .option('--no-http', 'no HTTP port')
  .option('--no-metrics', 'no per-request metrics (RPC histograms, byte counters)')
  .option('--config <file>', CONFIG_HELP)
  .action(async (o) => (await import('./daemons.js')).runMaster(o));

program
  .command('chunkserver')
  .description('run a chunkserver')
  .option('--data <dir>', 'chunk directory (required: flag, GFS_DATA or --config)')
  .option('--master <host:port>', 'master address')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <port>', 'gRPC port (0 = any free port)', '0')
  .option('--advertise <host:port>', 'address given to the master and clients')
  .option('--data-port <port>', 'data channel port: chunk reads and writes over framed TCP (0 = any free port)', '0')
  .option('--no-data-port', 'no data channel (clients use gRPC for chunk data)')
  .option('--advertise-data <host:port>', 'data channel address given to the master and clients')
  .option('--heartbeat-ms <ms>', 'heartbeat interval')
  .option('--scrub-bytes-per-sec <n>', 'scrubber rate (default 32 MiB/s; 0 = no scrubbing)')
  .option('--scrub-idle-ms <ms>', 'scrub only chunks unused this long (default 10000)')
  .option('--clone-bytes-per-sec <n>', 'bandwidth of one clone unless the master says (default 64 MiB/s)')
  .option('--scrub-pass-pause-ms <ms>', 'pause between scrubber passes (default 60000)')
  .option('--log-file <file>', 'JSON log file (default: stderr)')
  .option('--log-level <level>', 'trace|debug|info|warn|error')
  .option('--http-port <port>', 'status page, /api/status, /metrics, /healthz (0 = any free port)', '0')
  .option('--http-host <host>', 'HTTP listen address (default: --host)')
  .option('--no-http', 'no HTTP port')
  .option('--no-metrics', 'no per-request metrics (RPC histograms, byte counters)')
  .option('--config <file>', CONFIG_HELP)
  .action(async (o) => (await import('./daemons.js')).runChunkserver({ ...o, master: resolveMasterAddr(o.master) }));

program
  .command('mount')
  .description('mount a gfs cluster at DIR (foreground; Ctrl-C unmounts)')
  .argument('<dir>', 'mount point')
  .option('--master <host:port>', 'master address')
  .option('--log-file <file>', 'JSON log file (default: stderr)')
  .option('--log-level <level>', 'trace|debug|info|warn|error')
  .option('--metrics-port <port>', '/metrics and /healthz of the mount on this port (0 = any free port; default: off)')
  .option('--metrics-host <host>', 'listen address of --metrics-port', '127.0.0.1')
  .option('--no-metrics', 'no per-request metrics (FUSE op and RPC histograms)')
  .option('--attr-timeout <seconds>', 'how long names and attributes are cached (changes by other clients show up within it)', '1')
  .option('--no-fill-page-cache', 'a read that is not sequential fetches only what it asked for (default: its whole 64 KiB block, the rest into the page cache)')
  .option('--config <file>', CONFIG_HELP)
  .addOption(new Option('--debug', 'FUSE debug output').hideHelp())
  .action(async (dir, o) => (await import('./mount-command.js')).runMount(dir, { ...o, master: resolveMasterAddr(o.master) }));

program
  .command('umount')
  .description('unmount a gfs mount')
  .argument('<dir>', 'mount point')
  .action(async (dir) => (await import('./mount-command.js')).runUmount(dir));

program
  .command('status')
  .description('servers, their state, capacity and chunks, the repair backlog and recent events')
  .option('--master <host:port>', 'master address')
  .option('--json', 'machine-readable output')
  .action(async (o) => (await import('./status.js')).runStatus(resolveMasterAddr(o.master), !!o.json));

program
  .command('fsck')
  .description('check files, chunks and replicas; exit 1 when any chunk is under-replicated, missing or corrupt')
  .argument('[path]', 'subtree to check', '/')
  .option('--master <host:port>', 'master address')
  .option('--json', 'machine-readable output')
  .option('--max-findings <n>', 'files with findings listed at most', '1000')
  .action(async (path, o) =>
    (await import('./fsck.js')).runFsck(resolveMasterAddr(o.master), path, { json: !!o.json, maxFindings: Number(o.maxFindings) }),
  );

program
  .command('setgoal')
  .description('set the replication goal of a file or directory (new files inherit their directory\'s goal)')
  .argument('<goal>', 'number of replicas')
  .argument('<path>', 'file or directory')
  .option('-r, --recursive', 'also everything below a directory')
  .option('--master <host:port>', 'master address')
  .action(async (goal, path, o) => (await import('./fsck.js')).runSetGoal(resolveMasterAddr(o.master), path, goal, !!o.recursive));

program
  .command('bench')
  .description('benchmark suite: its own gfs cluster (and MooseFS with --peer moosefs), file-system workloads, client-library experiments, table + JSON + SVG')
  .option('--peer <name>', 'also run the workloads on a peer file system in the same run: moosefs')
  .option('--runs <n>', 'repetitions, systems alternating first (default 3, cut short by --budget-min unless --runs is given)')
  .option('--budget-min <min>', 'start another repetition only if it should end within this many minutes of the start (default 13 without --runs; 0 = no limit)')
  .option('--smoke', 'tiny sizes, gfs only unless --peer: quick dd/tar/ls/cat/rm, small git clone, 500 reads, ramp 1..8 (for CI)')
  .option('--skip <groups>', 'comma-separated workload groups to leave out: fs,git,client,ramp')
  .option('--reads <n>', 'small reads in the dispatch experiment (default 10000; smoke 500)')
  .option('--read-bytes <n>', 'size of each small read', '4096')
  .option('--client-mib <n>', 'size of the client-library test file (default 256; smoke 16)')
  .option('--ramp-max <n>', 'highest concurrency of the ramp 1,2,4,... (default 256; smoke 8)')
  .option('--ramp-step-ms <ms>', 'duration of each ramp step (default 1000; smoke 300)')
  .option('--out <dir>', 'results go to <dir>/<timestamp>/ (results.json, ratios.svg, table.txt)', './bench-results')
  .action(async (o) => (await import('../bench/suite.js')).runBench(o));

program
  .command('bench-meta')
  .description('metadata benchmark: create, stat, unlink of N files through the client library (own master + chunkserver)')
  .option('--files <n>', 'number of files', '10000')
  .option('--concurrency <n>', 'operations in flight', '64')
  .addOption(new Option('--sync-mode <mode>', 'master operation log fsyncs (both = run group, then each)').choices(['group', 'each', 'both']).default('both'))
  .option('--out <dir>', 'where JSON results go', './bench-results')
  .action(async (o) =>
    (await import('../bench/meta-bench.js')).runMetaBenchCli({
      files: Number(o.files),
      concurrency: Number(o.concurrency),
      syncMode: o.syncMode,
      out: o.out,
    }),
  );

program
  .command('bench-repair')
  .description('self-healing benchmark: fill a local cluster, SIGKILL a chunkserver, time the re-replication')
  .option('--size-mib <n>', 'data in the cluster (logical, before replication)', '2048')
  .option('--chunkservers <n>', 'chunkservers', '4')
  .option('--chunk-size <bytes>', 'chunk size', String(64 * 1024 * 1024))
  .option('--clone-bytes-per-sec <n>', 'bandwidth bound of one clone', String(64 * 1024 * 1024))
  .option('--max-clones <n>', 'clones in flight cluster-wide', '4')
  .option('--write-mib <n>', 'client write load (MiB) measured with and without repair running', '512')
  .option('--data <dir>', 'where the cluster lives (default: a temp dir, removed afterwards)')
  .option('--out <dir>', 'where JSON results go', './bench-results')
  .action(async (o) =>
    (await import('../bench/repair-bench.js')).runRepairBenchCli({
      sizeMiB: Number(o.sizeMib),
      chunkservers: Number(o.chunkservers),
      chunkSize: Number(o.chunkSize),
      cloneBytesPerSec: Number(o.cloneBytesPerSec),
      maxClones: Number(o.maxClones),
      writeMiB: Number(o.writeMib),
      data: o.data,
      out: o.out,
    }),
  );

// --secret-file, --tls-*, --exports, --no-tokens (security-flags.ts).
addSecurityOptions(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof GfsError ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`gfs: ${msg}\n`);
  process.exit(1);
});
