// Pushed data waiting for the Write/ApplyWrite that names it. The total is bounded: a push
// that would pass the bound is refused with a retryable RESOURCE_EXHAUSTED instead of growing
// memory. Buffers nobody used expire after PUSH_TTL_MS.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { GfsError } from '../common/errors.js';
import { MiB } from '../common/limits.js';

export const PUSH_BUFFER_BYTES = 512 * MiB;
export const PUSH_TTL_MS = 60_000;
/** How often expired buffers are swept. */
const SWEEP_MS = 5_000;
export const DATA_ID_MAX = 256;

interface Entry {
  parts: Buffer[];
  size: number;
  complete: boolean;
  touched: number;
  /** Increments when a new push replaces this id, so a stale writer cannot add to it. */
  generation: number;
  /** The chunk the push's token named (0 = not bound: tokens off). */
  handle: number;
}

export class PushBuffers {
  private readonly entries = new Map<string, Entry>();
  private total = 0;
  private generations = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly limitBytes = PUSH_BUFFER_BYTES,
    private readonly ttlMs = PUSH_TTL_MS,
  ) {
    this.timer = setInterval(() => this.sweep(), Math.min(SWEEP_MS, ttlMs));
    this.timer.unref();
  }

  get bytes(): number {
    return this.total;
  }

  get count(): number {
    return this.entries.size;
  }

  static checkId(dataId: unknown): string {
    if (typeof dataId !== 'string' || dataId.length === 0 || dataId.length > DATA_ID_MAX) {
      throw new GfsError('EINVAL', `bad data id ${JSON.stringify(String(dataId).slice(0, 40))}: 1..${DATA_ID_MAX} characters`);
    }
    return dataId;
  }

  private exhausted(what: string): GfsError {
    return new GfsError(
      'EAGAIN',
      `push buffers full (${this.total} of ${this.limitBytes} bytes held): ${what}`,
      GrpcStatus.RESOURCE_EXHAUSTED,
    );
  }

  /** Starts (or restarts) a buffer; `expected` is the announced total, checked up front. */
  begin(dataId: string, expected = 0, handle = 0): number {
    this.drop(dataId);
    if (expected > 0 && this.total + expected > this.limitBytes) throw this.exhausted(`cannot take ${expected} more`);
    const generation = ++this.generations;
    this.entries.set(dataId, { parts: [], size: 0, complete: false, touched: Date.now(), generation, handle });
    return generation;
  }

  /** Adds bytes to a buffer being received; throws RESOURCE_EXHAUSTED past the bound. */
  append(dataId: string, generation: number, data: Buffer): void {
    const e = this.entries.get(dataId);
    if (!e || e.generation !== generation) throw new GfsError('EAGAIN', `push ${dataId} was replaced or expired`);
    if (data.length === 0) return;
    if (this.total + data.length > this.limitBytes) throw this.exhausted(`cannot take ${data.length} more`);
    e.parts.push(data);
    e.size += data.length;
    e.touched = Date.now();
    this.total += data.length;
  }

  complete(dataId: string, generation: number): number {
    const e = this.entries.get(dataId);
    if (!e || e.generation !== generation) throw new GfsError('EAGAIN', `push ${dataId} was replaced or expired`);
    if (e.parts.length > 1) e.parts = [Buffer.concat(e.parts, e.size)];
    e.complete = true;
    e.touched = Date.now();
    return e.size;
  }

  /** Abandons a buffer of the given generation (a failed push). */
  abort(dataId: string, generation: number): void {
    if (this.entries.get(dataId)?.generation === generation) this.drop(dataId);
  }

  /** The whole pushed data, or undefined when absent or still arriving. */
  get(dataId: string): Buffer | undefined {
    const e = this.entries.get(dataId);
    if (!e || !e.complete) return undefined;
    e.touched = Date.now();
    return e.parts[0] ?? Buffer.alloc(0);
  }

  /** The chunk a buffer was pushed for (undefined: no such buffer, 0: not bound). */
  handleOf(dataId: string): number | undefined {
    return this.entries.get(dataId)?.handle;
  }

  /** Frees a buffer once its write has been applied. */
  drop(dataId: string): void {
    const e = this.entries.get(dataId);
    if (!e) return;
    this.entries.delete(dataId);
    this.total -= e.size;
  }

  sweep(now = Date.now()): number {
    let n = 0;
    for (const [id, e] of this.entries) {
      if (now - e.touched >= this.ttlMs) {
        this.drop(id);
        n++;
      }
    }
    return n;
  }

  close(): void {
    clearInterval(this.timer);
    this.entries.clear();
    this.total = 0;
  }
}
