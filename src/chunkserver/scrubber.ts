// Background scrubber: re-verifies the checksums of every idle chunk at a bounded rate, so a
// block that went bad on disk is found before a client (or a clone) needs it. A pass walks the
// chunks not read or written for SCRUB_IDLE_MS, longest idle first, one SCRUB_PIECE at a time
// under the chunk's shared lock (a concurrent write is never half seen), yielding to the event
// loop between pieces and chunks; a chunk used meanwhile is left for a later pass. Then it
// sleeps SCRUB_PASS_PAUSE_MS and starts over. A bad block marks the chunk corrupt in the store,
// which excludes it from reads and reports it in the next heartbeat's `corrupt`.
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { MiB } from '../common/limits.js';
import type { Logger } from '../common/logger.js';
import type { Admission } from './admission.js';
import type { ChunkStore } from './chunk-store.js';
import { TokenBucket } from './rate-limiter.js';

/** Default scrubbing rate (bytes per second); 0 disables the scrubber. */
export const SCRUB_BYTES_PER_SEC = 32 * MiB;
/** A chunk read or written within this long is not scrubbed in this pass. */
export const SCRUB_IDLE_MS = 10_000;
/** Pause between the end of one pass and the start of the next. */
export const SCRUB_PASS_PAUSE_MS = 60_000;
/** Bytes verified per step (whole checksum blocks, one lock hold). */
export const SCRUB_PIECE = MiB;
/**
 * What a step costs against the rate at least, however few bytes it read: opening a cold chunk
 * file and seeking to it is most of the work for a small one. Charged by bytes alone, 32 MiB/s
 * was 8,000 small chunks a second, each a synchronous open and a disk read beside the clients'
 * reads (during a cold `cat` of 5,000 small files, 660 opens of one server's 2,300).
 */
export const SCRUB_STEP_MIN_COST = MiB;
/** Pause after a step failed for a reason other than a bad block (I/O error, overload). */
const SCRUB_ERROR_PAUSE_MS = 1_000;

export interface ScrubberOptions {
  store: ChunkStore;
  admission: Admission;
  log: Logger;
  bytesPerSec?: number; // default SCRUB_BYTES_PER_SEC; 0 = never start
  idleMs?: number; // default SCRUB_IDLE_MS; 0 = scrub chunks in use too
  passPauseMs?: number; // default SCRUB_PASS_PAUSE_MS
}

export interface ScrubStats {
  enabled: boolean;
  bytesPerSec: number;
  /** Passes completed. */
  passes: number;
  /** Chunks verified to the end with every block good. */
  chunksVerified: number;
  bytesVerified: number;
  /** Chunks found corrupt by the scrubber. */
  corruptFound: number;
  /** Chunks left for a later pass because they were used while being scrubbed. */
  skippedBusy: number;
  /** Steps that failed without a verdict (I/O error, background pool full). */
  errors: number;
  /** Duration of the last completed pass. */
  lastPassMs: number;
}

export class Scrubber {
  readonly bytesPerSec: number;
  readonly idleMs: number;
  readonly passPauseMs: number;
  private readonly bucket: TokenBucket | undefined;
  private readonly ac = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly counts = {
    passes: 0,
    chunksVerified: 0,
    bytesVerified: 0,
    corruptFound: 0,
    skippedBusy: 0,
    errors: 0,
    lastPassMs: 0,
  };

  constructor(private readonly opts: ScrubberOptions) {
    this.bytesPerSec = opts.bytesPerSec ?? SCRUB_BYTES_PER_SEC;
    this.idleMs = opts.idleMs ?? SCRUB_IDLE_MS;
    this.passPauseMs = opts.passPauseMs ?? SCRUB_PASS_PAUSE_MS;
    for (const [k, v] of Object.entries({ bytesPerSec: this.bytesPerSec, idleMs: this.idleMs, passPauseMs: this.passPauseMs })) {
      if (!(v >= 0)) throw new RangeError(`scrubber ${k} must be >= 0, got ${v}`);
    }
    this.bucket = this.bytesPerSec > 0 ? new TokenBucket(this.bytesPerSec) : undefined;
  }

  get enabled(): boolean {
    return this.bucket !== undefined;
  }

  get stats(): ScrubStats {
    return { enabled: this.enabled, bytesPerSec: this.bytesPerSec, ...this.counts };
  }

  /** Starts the background loop (no-op when disabled or already started). */
  start(): void {
    if (!this.enabled || this.loop || this.ac.signal.aborted) return;
    this.loop = this.run().catch((err) => {
      if (!this.ac.signal.aborted) this.opts.log.error({ err }, 'scrubber stopped by an unexpected error');
    });
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { store, log } = this.opts;
    const signal = this.ac.signal;
    log.info({ bytesPerSec: this.bytesPerSec, idleMs: this.idleMs, passPauseMs: this.passPauseMs }, 'scrubber started');
    while (!signal.aborted) {
      const t0 = performance.now();
      for (const h of store.scrubCandidates(this.idleMs)) {
        if (signal.aborted) return;
        await this.scrubChunk(h);
        await yieldToLoop();
      }
      this.counts.passes++;
      this.counts.lastPassMs = Math.round(performance.now() - t0);
      log.debug({ ...this.counts }, 'scrub pass done');
      await sleep(this.passPauseMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Verifies one chunk from its first block to its end, unless it is used meanwhile. */
  private async scrubChunk(h: number): Promise<void> {
    const { store, admission, log } = this.opts;
    const signal = this.ac.signal;
    let block = 0;
    while (!signal.aborted) {
      const unusedSince = this.idleMs > 0 ? Date.now() - this.idleMs : undefined;
      let step;
      try {
        step = await admission.background(() => store.verifyBlocks(h, block, SCRUB_PIECE, unusedSince));
      } catch (err) {
        if (store.info(h)?.corrupt) {
          // Unreadable meta: the store marked the chunk corrupt on the way.
          this.counts.corruptFound++;
          log.warn({ handle: h, block, err: (err as Error).message }, 'scrubber found a corrupt chunk');
        } else {
          this.counts.errors++;
          log.debug({ handle: h, block, err: (err as Error).message }, 'scrub step failed; chunk left for a later pass');
          await sleep(SCRUB_ERROR_PAUSE_MS, undefined, { signal }).catch(() => undefined);
        }
        return;
      }
      switch (step.status) {
        case 'gone':
          return;
        case 'busy':
          this.counts.skippedBusy++;
          return;
        case 'bad':
          this.counts.bytesVerified += step.bytes;
          this.counts.corruptFound++;
          log.warn({ handle: h, block: step.block }, 'scrubber found a bad block: chunk marked corrupt');
          return;
        case 'ok':
          this.counts.bytesVerified += step.bytes;
          // Paid after the read (the piece may be short): the debt is waited out here.
          await this.bucket!.take(Math.max(step.bytes, SCRUB_STEP_MIN_COST), signal).catch(() => undefined);
          if (step.next < 0) {
            this.counts.chunksVerified++;
            return;
          }
          block = step.next;
          await yieldToLoop();
      }
    }
  }
}
