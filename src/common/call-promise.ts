// Calls a promise-returning function the way an async function would run its body: a
// synchronous throw becomes a rejection. The client's small-read path (the piece pool, replica
// tracking, call timing) uses this instead of an async wrapper, whose extra promise and
// microtask turns were measurable per read.
export function callPromise<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * callPromise, and `settled` once the call is over (`failed` when it rejected), before the
 * result is passed on: what `finally` would do, without its extra promise per call.
 */
export function callSettled<T>(fn: () => Promise<T>, settled: (failed: boolean) => void): Promise<T> {
  return callPromise(fn).then(
    (v) => {
      settled(false);
      return v;
    },
    (err: unknown) => {
      settled(true);
      throw err;
    },
  );
}
