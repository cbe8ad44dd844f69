// Timestamps with nanoseconds. {sec, nsec} keeps dates far past 2038 exact (sec is a JS number,
// exact to 2^53) and is plain JSON, so it can travel inside mutation records.
import { einval } from '../common/errors.js';

export interface Time {
  sec: number;
  nsec: number;
}

const NS_PER_SEC = 1_000_000_000n;
// Wall clock at start-up plus a monotonic offset: nanosecond resolution, never goes backwards
// within one process.
const baseNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
let lastNs = 0n;

/** The current wall-clock time with nanoseconds; strictly increasing within the process. */
export function now(): Time {
  let ns = baseNs + process.hrtime.bigint();
  if (ns <= lastNs) ns = lastNs + 1n;
  lastNs = ns;
  return { sec: Number(ns / NS_PER_SEC), nsec: Number(ns % NS_PER_SEC) };
}

export function fromMs(ms: number): Time {
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: Math.round((ms - sec * 1000) * 1e6) };
}

/** Validates a time that came over the wire. */
export function checkTime(t: { sec?: number; nsec?: number } | null | undefined, what: string): Time {
  const sec = Number(t?.sec ?? 0);
  const nsec = Number(t?.nsec ?? 0);
  if (!Number.isSafeInteger(sec)) throw einval(`${what}: seconds out of range`);
  if (!Number.isInteger(nsec) || nsec < 0 || nsec >= 1e9) throw einval(`${what}: nanoseconds must be 0..999999999`);
  return { sec, nsec };
}

export function copyTime(t: Time): Time {
  return { sec: t.sec, nsec: t.nsec };
}
