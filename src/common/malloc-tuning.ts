// glibc malloc settings for gfs processes, handed to them in the environment (glibc reads it
// once, when the process starts, so a process can only set it for the processes it spawns).
//
// Why: a page fault (the first touch of a fresh 4 KiB page) costs ~18 us on the VMs we run on,
// and by default glibc gives freed heap memory back to the kernel as soon as 128 KiB are free
// at the top of the heap, and maps each allocation of 128 KiB or more fresh. Every reply buffer,
// read slab and checksum block of a busy daemon was then faulted in again on its next use: 42
// faults and ~0.8 ms of master CPU per 500-entry directory listing (a 50 KB reply copied three
// times on its way out). With freed memory kept in the heap: 1,700 faults instead of 44,000 per
// 1,000 listings, and listings in 0.76 ms instead of 1.8 ms end to end. The cost: a process's
// RSS falls back more slowly after a burst (up to the trim threshold stays mapped).
import { MiB } from './limits.js';

/** Free memory at the top of a heap kept mapped rather than given back to the kernel. */
export const MALLOC_TRIM_THRESHOLD_BYTES = 128 * MiB;
/** Allocations from here up are mapped on their own (rare: whole chunks at most). */
export const MALLOC_MMAP_THRESHOLD_BYTES = 32 * MiB;

/** The environment variables (glibc's aliases of its malloc tunables) and their values. */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_TRIM_THRESHOLD_: String(MALLOC_TRIM_THRESHOLD_BYTES),
  MALLOC_MMAP_THRESHOLD_: String(MALLOC_MMAP_THRESHOLD_BYTES),
};

/** Sets the tunables in `env` (for children to inherit) where the operator did not set them. */
export function applyMallocDefaults(env: NodeJS.ProcessEnv = process.env): void {
  for (const [k, v] of Object.entries(MALLOC_ENV)) env[k] ??= v;
}

/**
 * Whether this process started with the tunables (logged by each daemon at start). Read when
 * this module is first evaluated, which is before main.ts's applyMallocDefaults() runs.
 */
export const MALLOC_TUNED_AT_START = Object.keys(MALLOC_ENV).every((k) => process.env[k] !== undefined);
