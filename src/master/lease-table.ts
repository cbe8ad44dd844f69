// Leases (which replica is primary for mutations of a chunk, until when) and the per-handle
// lock that serialises lease grants and truncations. Not persistent: after a master restart
// every lease is gone, and the next grant bumps the version anyway.

export const LEASE_MS = 60_000;

export interface Lease {
  primary: string;
  /** The replica set the lease was granted with (all at `version`). */
  replicas: string[];
  version: number;
  /** Wall-clock ms. */
  expiry: number;
}

export class LeaseTable {
  private readonly leases = new Map<number, Lease>();
  private readonly locks = new Map<number, Promise<void>>();

  get(handle: number): Lease | undefined {
    return this.leases.get(handle);
  }

  set(handle: number, lease: Lease): void {
    this.leases.set(handle, lease);
  }

  revoke(handle: number): void {
    this.leases.delete(handle);
  }

  /** True while some task holds (or waits for) the lock of `handle`. */
  isLocked(handle: number): boolean {
    return this.locks.has(handle);
  }

  /** Runs fn with the lock of `handle` held; callers queue in arrival order (promise chain). */
  async withLock<T>(handle: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(handle) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.locks.set(handle, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(handle) === tail) this.locks.delete(handle);
    }
  }

  clear(): void {
    this.leases.clear();
  }
}
