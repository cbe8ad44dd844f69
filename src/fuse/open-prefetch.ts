// Head reads at open: an open of a small file whose first chunk this mount has seen before
// also reads the file's first bytes from there, while the master answers the open (client
// openWithHead). A cold `cat` of a small file then waits for one round trip instead of two.
//
// The guess costs a chunkserver read even when nobody needs it: when the kernel still holds
// the file's pages (an open that keeps the cache, as builds and dbench do over and over) it
// never reads. Those opens are guessed only while recent guesses of that kind were used.
import type { Attr } from '../client/api.js';

/** Files up to this size are read at open: one kernel read (max_read) covers them. */
export const HEAD_BYTES_MAX = 128 * 1024;
/** Outcomes of head reads on cache-keeping opens remembered for the decision. */
const HISTORY = 32;
/** Cache-keeping opens get a head read while at least this share of recent ones were used. */
const MIN_USED_SHARE = 0.25;
/** While below that share, one cache-keeping open in this many still gets one (to notice a change). */
const PROBE_EVERY = 16;

export class OpenPrefetch {
  private readonly outcomes: boolean[] = [];
  private used = 0;
  private skipped = 0;

  /**
   * How many bytes to read at the open of a file last known as `known` (0: none). `keeps`:
   * the open would keep the kernel's cached pages.
   */
  headBytes(known: Attr | undefined, keeps: boolean): number {
    if (!known || known.size <= 0 || known.size > HEAD_BYTES_MAX) return 0;
    if (keeps && !this.worthIt()) return 0;
    return Math.min(HEAD_BYTES_MAX, Math.ceil(known.size / 4096) * 4096);
  }

  /** What became of a head read of a cache-keeping open. */
  outcome(used: boolean): void {
    this.outcomes.push(used);
    if (used) this.used++;
    if (this.outcomes.length > HISTORY && this.outcomes.shift()) this.used--;
  }

  private worthIt(): boolean {
    if (this.outcomes.length < HISTORY / 4 || this.used >= MIN_USED_SHARE * this.outcomes.length) return true;
    return ++this.skipped % PROBE_EVERY === 0;
  }
}
