#!/usr/bin/env node
// The `gfs` command: every role of the system and its tools behind one entry point.
import { Command, Option } from 'commander';
import { GfsError } from '../common/errors.js';
import { DEFAULT_DATA_DIR, resolveMasterAddr } from './master-addr.js';

const program = new Command();
program.name('gfs').description('A GFS-style distributed file system, mounted through FUSE').showHelpAfterError();

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
  .action(async (o) => (await import('./up.js')).runUp(o));

program
  .command('master')
  .description('run the master')
  .option('--data <dir>', 'metadata directory', `${DEFAULT_DATA_DIR}/master`)
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <port>', 'gRPC port (0 = any free port)', '0')
  .option('--chunk-size <bytes>', 'chunk size (default 64 MiB)')
  .option('--replication <n>', 'default replication goal', '3')
  .option('--heartbeat-ms <ms>', 'heartbeat interval told to chunkservers')
  .option('--suspect-after-ms <ms>', 'silence before a chunkserver is suspect')
  .option('--dead-after-ms <ms>', 'silence before a chunkserver is dead')
  .addOption(new Option('--sync-mode <mode>', 'operation log fsyncs: shared by concurrent mutations, or one per mutation').choices(['group', 'each']).default('group'))
  .option('--checkpoint-bytes <bytes>', 'checkpoint when the operation log passes this size (default 64 MiB)')
  .option('--log-file <file>', 'JSON log file (default: stderr)')
  .option('--log-level <level>', 'trace|debug|info|warn|error')
  .action(async (o) => (await import('./daemons.js')).runMaster(o));

program
  .command('chunkserver')
  .description('run a chunkserver')
  .requiredOption('--data <dir>', 'chunk directory')
  .option('--master <host:port>', 'master address')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <port>', 'gRPC port (0 = any free port)', '0')
  .option('--advertise <host:port>', 'address given to the master and clients')
  .option('--heartbeat-ms <ms>', 'heartbeat interval')
  .option('--scrub-bytes-per-sec <n>', 'scrubber rate (default 32 MiB/s; 0 = no scrubbing)')
  .option('--scrub-idle-ms <ms>', 'scrub only chunks unused this long (default 10000)')
  .option('--clone-bytes-per-sec <n>', 'bandwidth of one clone unless the master says (default 64 MiB/s)')
  .option('--log-file <file>', 'JSON log file (default: stderr)')
  .option('--log-level <level>', 'trace|debug|info|warn|error')
  .action(async (o) => (await import('./daemons.js')).runChunkserver({ ...o, master: resolveMasterAddr(o.master) }));

program
  .command('mount')
  .description('mount a gfs cluster at DIR (foreground; Ctrl-C unmounts)')
  .argument('<dir>', 'mount point')
  .option('--master <host:port>', 'master address')
  .option('--log-file <file>', 'JSON log file (default: stderr)')
  .option('--log-level <level>', 'trace|debug|info|warn|error')
  .addOption(new Option('--debug', 'FUSE debug output').hideHelp())
  .action(async (dir, o) => (await import('./mount-command.js')).runMount(dir, { ...o, master: resolveMasterAddr(o.master) }));

program
  .command('umount')
  .description('unmount a gfs mount')
  .argument('<dir>', 'mount point')
  .action(async (dir) => (await import('./mount-command.js')).runUmount(dir));

program
  .command('status')
  .description('servers, their state, capacity and chunks')
  .option('--master <host:port>', 'master address')
  .option('--json', 'machine-readable output')
  .action(async (o) => (await import('./status.js')).runStatus(resolveMasterAddr(o.master), !!o.json));

program
  .command('bench')
  .description('benchmark the client library against a cluster it starts itself')
  .option('--size-mib <n>', 'size of the sequential file', '1024')
  .option('--reads <n>', 'small reads in the dispatch experiment', '10000')
  .option('--read-bytes <n>', 'size of each small read', '4096')
  .option('--runs <n>', 'repetitions (report median and spread)', '3')
  .option('--out <dir>', 'where JSON results go', './bench-results')
  .action(async (o) =>
    (await import('../bench/client-bench.js')).runClientBench({
      sizeMiB: Number(o.sizeMib),
      reads: Number(o.reads),
      readBytes: Number(o.readBytes),
      runs: Number(o.runs),
      out: o.out,
    }),
  );

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

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof GfsError ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`gfs: ${msg}\n`);
  process.exit(1);
});
