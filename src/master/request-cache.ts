// Answers to changes a client may send twice. A call whose reply was lost with its connection
// (a session that broke while the master was running it) is sent again, under the same
// request id, once the client reconnects; run again, an exclusive create would fail with
// EEXIST for the file it made, a rename or unlink with ENOENT, and an append would reserve its
// range twice. So the first run's outcome is kept here, and a retry gets it, or waits for it
// when the first run is still under way.
//
// Kept in memory only: a master that crashes between running a change and answering it
// forgets the id, and the retry runs against the replayed state (as every change did before).
import { LRUCache } from 'lru-cache';
import { GfsError } from '../common/errors.js';

/**
 * Outcomes kept at most (each a reply of up to ~1 KiB): seconds of changes at the master's
 * busiest, and a retry comes within a second of its connection breaking unless the master
 * itself is out of reach.
 */
export const REQUEST_CACHE_MAX = 16_384;
/** How long an outcome is kept: past the client's retry window (client/options.ts). */
export const REQUEST_CACHE_TTL_MS = 60_000;
/** A request id longer than this is refused (a client's is a UUID and a counter). */
export const REQUEST_ID_MAX_CHARS = 128;

export class RequestCache {
  private readonly outcomes: LRUCache<string, Promise<unknown>>;

  constructor(max = REQUEST_CACHE_MAX, ttlMs = REQUEST_CACHE_TTL_MS) {
    this.outcomes = new LRUCache({ max, ttl: ttlMs });
  }

  /**
   * Runs `fn` for `method` call `requestId`, once: a repeat of the id gets the first run's
   * answer or error. An empty id (an old client, a call that needs none) runs every time. A
   * failure a retry could get past (the master shutting down, overload) is not kept.
   */
  run<T>(method: string, requestId: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (!requestId) return fn();
    if (requestId.length > REQUEST_ID_MAX_CHARS) {
      return Promise.reject(new GfsError('EINVAL', `${method}: request id of ${requestId.length} characters (at most ${REQUEST_ID_MAX_CHARS})`));
    }
    const key = `${method}\0${requestId}`;
    const known = this.outcomes.get(key) as Promise<T> | undefined;
    if (known) return known;
    const p = fn();
    this.outcomes.set(key, p);
    p.catch((err: unknown) => {
      if (err instanceof GfsError && err.retryable && this.outcomes.peek(key) === p) this.outcomes.delete(key);
    });
    return p;
  }

  get size(): number {
    return this.outcomes.size;
  }
}
