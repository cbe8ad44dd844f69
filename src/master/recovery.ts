// Start-up: load the newest valid checkpoint, then replay the log segments after it.
// - A checkpoint that fails its checks is skipped for the one before it (and its segments).
// - The last segment may end in a torn record (a crash mid-write): it is cut off (the file is
//   truncated to the last good record) and start-up continues.
// - A damaged record with a good record after it, a damaged record in an older segment, a
//   record that does not apply, or a missing segment: start-up stops with an error naming the
//   file and byte offset. Never a silent partial load.
import { open as openFile, readFile, rename, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { listDataDir, readCheckpoint } from './checkpoint.js';
import type { MasterCore } from './core.js';
import { isDir } from './inode.js';
import { type MasterState, type Mutation } from './mutations.js';
import { decodeHeader, encodeHeader, LOG_HEADER_BYTES, scanRecords } from './oplog.js';
import { restore } from './snapshot.js';

export interface RecoveryResult {
  /** undefined: the directory holds no state yet (a fresh master). */
  state?: MasterState;
  chunkSize?: number;
  /** The checkpoint loaded. */
  checkpointSeq?: number;
  checkpointFile?: string;
  checkpointBytes?: number;
  /** Checkpoints skipped because they failed their checks (renamed to *.corrupt). */
  badCheckpoints: Array<{ file: string; error: string }>;
  segmentsReplayed: number;
  recordsReplayed: number;
  /** A torn tail that was cut off. */
  tornTail?: { file: string; offset: number; bytes: number };
  /** Highest seq of any checkpoint or segment seen (the next segment is above it). */
  maxSeq: number;
  checkpointMs: number;
  replayMs: number;
}

/** A damaged log or a data directory that does not hang together: the master must not start. */
export class RecoveryError extends GfsError {
  constructor(message: string) {
    super('EIO', message);
  }
}

export async function recover(dir: string, log?: Logger): Promise<RecoveryResult> {
  const listing = await listDataDir(dir);
  for (const t of listing.temps) await unlink(t).catch(() => undefined);
  const maxSeq = Math.max(0, ...listing.checkpoints.map((c) => c.seq), ...listing.segments.map((s) => s.seq));
  const result: RecoveryResult = { badCheckpoints: [], segmentsReplayed: 0, recordsReplayed: 0, maxSeq, checkpointMs: 0, replayMs: 0 };
  if (!listing.checkpoints.length) {
    if (listing.segments.length) {
      throw new RecoveryError(
        `${dir} holds operation log segments (${listing.segments.map((s) => basename(s.file)).join(', ')}) but no checkpoint; refusing to start`,
      );
    }
    return result; // fresh
  }

  const t0 = performance.now();
  let state: MasterState | undefined;
  for (const c of listing.checkpoints) {
    try {
      const d = await readCheckpoint(c.file);
      if (d.seq !== c.seq) throw new Error(`${c.file}: holds seq ${d.seq}`);
      state = restore(d.snapshot);
      result.chunkSize = d.chunkSize;
      result.checkpointSeq = c.seq;
      result.checkpointFile = c.file;
      result.checkpointBytes = d.bytes;
      break;
    } catch (err) {
      const error = (err as Error).message;
      result.badCheckpoints.push({ file: c.file, error });
      log?.error({ file: c.file, err: error }, 'checkpoint is not valid; falling back to the one before it');
    }
  }
  if (!state || result.checkpointSeq === undefined) {
    throw new RecoveryError(
      `no valid checkpoint in ${dir}: ${result.badCheckpoints.map((b) => b.error).join('; ')}; refusing to start`,
    );
  }
  result.checkpointMs = performance.now() - t0;

  const t1 = performance.now();
  const segs = listing.segments.filter((s) => s.seq >= result.checkpointSeq!);
  // Each start and each checkpoint opens the next segment number, so the segments after a
  // checkpoint have no gaps (there may be none at all: a crash right after the first one).
  let expect = result.checkpointSeq;
  for (const s of segs) {
    if (s.seq !== expect) {
      throw new RecoveryError(`log segment ${basename(s.file).replace(/\d{20}/, String(expect).padStart(20, '0'))} is missing in ${dir} (found ${basename(s.file)}); refusing to start`);
    }
    expect++;
  }
  for (let i = 0; i < segs.length; i++) {
    const last = i === segs.length - 1;
    const { file, seq } = segs[i]!;
    const buf = await readFile(file);
    const header = decodeHeader(buf);
    if ('error' in header) {
      if (last && buf.length < LOG_HEADER_BYTES) {
        // Torn while being created: it never held a record. Make it a valid empty segment
        // (not removed: the next segment number must follow it without a gap).
        const h = await openFile(file, 'w');
        try {
          await h.write(encodeHeader(seq), 0, LOG_HEADER_BYTES, 0);
          await h.sync();
        } finally {
          await h.close();
        }
        result.tornTail = { file, offset: 0, bytes: buf.length };
        log?.warn({ file, bytes: buf.length }, 'log segment was torn while being created; rewrote its header');
        result.segmentsReplayed++;
        continue;
      }
      throw new RecoveryError(`operation log ${file} is damaged at byte offset 0: ${header.error}; refusing to start`);
    }
    if (header.seq !== seq) throw new RecoveryError(`operation log ${file} is damaged at byte offset 16: header says segment ${header.seq}; refusing to start`);
    const scan = scanRecords(buf);
    if (scan.damagedAt !== undefined || (scan.torn && !last)) {
      const at = scan.damagedAt ?? scan.goodEnd;
      const why = scan.damagedAt !== undefined ? 'a good record follows it, so this is damage, not a torn write' : 'it is not the last segment';
      throw new RecoveryError(
        `operation log ${file} is damaged at byte offset ${at} (record ${scan.records.length + 1}; ${why}); ` +
          `refusing to start rather than load only part of the log`,
      );
    }
    for (const r of scan.records) {
      let m: Mutation;
      try {
        m = JSON.parse(r.payload.toString('utf8')) as Mutation;
        state.apply(m);
      } catch (err) {
        throw new RecoveryError(
          `operation log ${file}: the record at byte offset ${r.offset} does not apply (${(err as Error).message}); refusing to start`,
        );
      }
      result.recordsReplayed++;
    }
    result.segmentsReplayed++;
    if (last && !scan.torn && scan.records.length > 0) {
      // In background sync mode, records of a crashed master may still be only in the page
      // cache: make them durable before anything new is built on them.
      const h = await openFile(file, 'r+');
      try {
        await h.datasync();
      } finally {
        await h.close();
      }
    }
    if (scan.torn) {
      const h = await openFile(file, 'r+');
      try {
        await h.truncate(scan.goodEnd);
        await h.sync();
      } finally {
        await h.close();
      }
      result.tornTail = { file, offset: scan.goodEnd, bytes: buf.length - scan.goodEnd };
      log?.warn(result.tornTail, 'operation log ended in a torn record; cut it off');
    }
  }
  result.replayMs = performance.now() - t1;
  // Keep the evidence, but out of the way of the next start-up.
  for (const b of result.badCheckpoints) await rename(b.file, `${b.file}.corrupt`).catch(() => undefined);
  state.skipReserved();
  result.state = state;
  return result;
}

/** Inodes with no name left (unlinked while open): open counts are not persistent. */
export function orphanInodes(state: MasterState): number[] {
  const out: number[] = [];
  for (const inode of state.ns.inodes.values()) if (inode.nlink === 0 && !isDir(inode)) out.push(inode.ino);
  return out;
}

/** At start-up nobody has anything open: frees the orphans (logged records). Returns them. */
export function freeOrphans(core: MasterCore): number[] {
  const orphans = orphanInodes(core.state);
  for (const ino of orphans) core.mutate({ op: 'free', ino });
  return orphans;
}
