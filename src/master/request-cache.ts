// Answers to changes a client may send twice. A call whose reply was lost with its connection
// (a session that broke while the master was running it) is sent again, under the same
// request id, once the client reconnects; run again, an exclusive create would fail with
// EEXIST for the file it made, a rename or unlink with ENOENT, an append would reserve its
// range twice and a release would drop a second open. So the first run's outcome is kept
// here, and a retry gets it, or waits for it when the first run is still under way.
//
// A request id is "<client>:<seq>:<done>": the client's random name, the call's number (the
// same on every try), and the lowest number among the client's calls still waiting for an
// answer. Outcomes below `done` reached the client and are dropped, so what is kept is the
// calls in flight and those answered since the client's last call, not a history (NFSv4.1
// sessions drop a slot's cached reply the same way, on its reuse). Every reply kept for a
// minute instead, as first done here, made tar -x ~9% and rm -rf ~55% slower (medians of 4
// fresh clusters each): the master's GC had all of them to copy and promote.
//
// Kept in memory only: a master that crashes between running a change and answering it
// forgets the id, and the retry runs against the replayed state (as every change did before).
import { LRUCache } from 'lru-cache';
import { GfsError } from '../common/errors.js';

/** Clients whose outcomes are kept at most, each until it has been silent for CLIENT_IDLE_MS. */
export const REQUEST_CLIENTS_MAX = 4_096;
/** Past the client's retry window (client/options.ts): a silent client has stopped retrying. */
export const REQUEST_CLIENT_IDLE_MS = 60_000;
/** Outcomes kept per client at most (its calls in flight; past this the oldest goes). */
export const REQUEST_OUTCOMES_PER_CLIENT_MAX = 4_096;
/** A request id longer than this is refused (a client's is a UUID and two counters). */
export const REQUEST_ID_MAX_CHARS = 128;

interface Outcome {
  method: string;
  p: Promise<unknown>;
}

interface ClientRequests {
  outcomes: Map<number, Outcome>;
  /** Every call numbered below this has been answered (the highest `done` heard). */
  done: number;
}

interface RequestId {
  client: string;
  seq: number;
  done: number;
}

export class RequestCache {
  private readonly clients: LRUCache<string, ClientRequests>;

  constructor(
    maxClients = REQUEST_CLIENTS_MAX,
    idleMs = REQUEST_CLIENT_IDLE_MS,
    private readonly perClient = REQUEST_OUTCOMES_PER_CLIENT_MAX,
  ) {
    this.clients = new LRUCache({ max: maxClients, ttl: idleMs, updateAgeOnGet: true });
  }

  /**
   * Runs `fn` for `method` call `requestId`, once: a repeat of the id gets the first run's
   * answer or error. An empty id (an old client, a call that needs none) runs every time. A
   * failure a retry could get past (the master shutting down, overload) is not kept.
   */
  run<T>(method: string, requestId: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (!requestId) return fn();
    let id: RequestId;
    try {
      id = parseRequestId(method, requestId);
    } catch (err) {
      return Promise.reject(err);
    }
    let c = this.clients.get(id.client);
    if (!c) this.clients.set(id.client, (c = { outcomes: new Map(), done: 0 }));
    if (id.done > c.done) {
      c.done = id.done;
      for (const seq of c.outcomes.keys()) if (seq < id.done) c.outcomes.delete(seq);
    }
    const known = c.outcomes.get(id.seq);
    if (known) {
      if (known.method !== method) return Promise.reject(new GfsError('EINVAL', `${method}: request id ${requestId} was a ${known.method}`));
      return known.p as Promise<T>;
    }
    const p = fn();
    const outcomes = c.outcomes;
    outcomes.set(id.seq, { method, p });
    if (outcomes.size > this.perClient) outcomes.delete(outcomes.keys().next().value!);
    p.catch((err: unknown) => {
      if (err instanceof GfsError && err.retryable && outcomes.get(id.seq)?.p === p) outcomes.delete(id.seq);
    });
    return p;
  }

  /** Outcomes kept, over all clients. */
  get size(): number {
    let n = 0;
    for (const c of this.clients.values()) n += c.outcomes.size;
    return n;
  }
}

function parseRequestId(method: string, requestId: string): RequestId {
  const bad = (why: string) => new GfsError('EINVAL', `${method}: request id ${JSON.stringify(requestId.slice(0, REQUEST_ID_MAX_CHARS))} ${why}`);
  if (requestId.length > REQUEST_ID_MAX_CHARS) throw bad(`is ${requestId.length} characters (at most ${REQUEST_ID_MAX_CHARS})`);
  const parts = requestId.split(':');
  if (parts.length !== 3 || parts[0] === '') throw bad('is not <client>:<seq>:<done>');
  const seq = Number(parts[1]);
  const done = Number(parts[2]);
  if (!/^\d+$/.test(parts[1]!) || !/^\d+$/.test(parts[2]!) || !Number.isSafeInteger(seq) || !Number.isSafeInteger(done) || done > seq) {
    throw bad('has a bad call number (want <seq> >= <done>, both integers)');
  }
  return { client: parts[0]!, seq, done };
}
