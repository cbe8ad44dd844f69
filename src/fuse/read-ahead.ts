// Read-ahead for one open handle. The kernel sends 128 KiB reads (up to 4 in flight for one
// sequential reader); going to the chunkservers for each would cost one round trip per 128 KiB.
// When the offsets are sequential we fetch ahead in large pieces (window doubling from 1 MiB up
// to `maxBytes`), keep at most a current and a next segment, and serve the kernel from them.
// Memory is bounded per mount by a shared budget; without room we read just what was asked.
// Segments are tagged with the file's data generation: any write or truncate through this
// mount drops them. Their memory comes from a pool of recycled buffers (fresh memory costs a
// page fault per page on first touch); a buffer goes back only once its fetch has settled and
// no reader can still be copying from it.
import type { GfsClientApi } from '../client/api.js';
import type { Slab, SlabPool } from '../common/slab-pool.js';

const MIN_WINDOW = 1024 * 1024;
/** Reads this close to the previous end still count as sequential (kernel reorders a little). */
const SEQ_SLACK = 1024 * 1024;
const MAX_SEGMENTS = 3;

export interface ReadAheadBudget {
  used: number;
  readonly limit: number;
}

interface Segment {
  start: number;
  want: number;
  gen: number;
  promise: Promise<Buffer>;
  data?: Buffer;
  slab?: Slab;
  settled: boolean;
  dropped: boolean;
  /** A head read at open (prefill): told, once the segment goes, whether a read used it. */
  onHead?: (used: boolean) => void;
  used?: boolean;
}

export class ReadAhead {
  private next = -1;
  private window = 0;
  private segs: Segment[] = [];

  constructor(
    private readonly client: GfsClientApi,
    private readonly ino: number,
    /** Reads that are not sequential (block-fill.ts: whole 64 KiB blocks, the rest to the page cache). */
    private readonly random: (off: number, len: number) => Promise<Buffer>,
    private readonly maxBytes: number,
    private readonly budget: ReadAheadBudget,
    private readonly pool: SlabPool,
  ) {}

  /**
   * The file's first `want` bytes, already being read at open (client openWithHead): `head`
   * resolves to them, or to undefined when the guess was wrong and they must be read now.
   */
  prefill(gen: number, want: number, head: Promise<Buffer | undefined>, onHead?: (used: boolean) => void): boolean {
    if (this.segs.length > 0 || this.budget.used + want > this.budget.limit) return false;
    this.budget.used += want;
    const seg: Segment = { start: 0, want, gen, promise: Promise.resolve(Buffer.alloc(0)), settled: false, dropped: false, onHead };
    seg.promise = head
      .then((d) => d ?? this.client.read(this.ino, 0, want))
      .then(
        (data) => {
          seg.data = data;
          return data;
        },
        (err: unknown) => {
          this.drop(seg);
          throw err;
        },
      );
    void seg.promise.then(
      () => this.settle(seg),
      () => this.settle(seg),
    );
    seg.promise.catch(() => undefined);
    this.segs.push(seg);
    this.window = want;
    return true;
  }

  /**
   * Up to `len` bytes at `off` (short only at end of file). The result may be a view of a
   * segment: copy it before the next read of this handle.
   */
  async read(gen: number, off: number, len: number): Promise<Buffer> {
    if (this.segs.length > 0 && this.segs.some((s) => s.gen !== gen)) this.dropAll();
    // Segments wholly behind the reader are done (a previous read has copied from them).
    while (this.segs.length > 0 && this.segs[0]!.start + this.segs[0]!.want <= off && this.segs[0]!.settled) this.drop(this.segs[0]!);
    const end = off + len;
    const covered = this.segs.some((s) => s.start <= off && off < s.start + s.want);
    const sequential = covered || (this.next === -1 ? off === 0 : Math.abs(off - this.next) <= SEQ_SLACK);
    this.next = Math.max(sequential ? this.next : 0, end);
    if (!sequential || this.maxBytes <= 0) {
      this.window = 0;
      this.dropAll();
      this.next = end;
      return this.random(off, len);
    }
    if (!covered) {
      this.window = Math.min(this.maxBytes, Math.max(MIN_WINDOW, this.window * 2, len));
      if (!this.fetch(off, Math.max(this.window, len), gen)) return this.random(off, len);
    }
    // Keep one window ahead of the reader.
    const last = this.segs[this.segs.length - 1]!;
    const lastEnd = last.start + last.want;
    const atEof = last.data !== undefined && last.data.length < last.want;
    if (!atEof && lastEnd - end < this.window + len && this.segs.length < MAX_SEGMENTS) {
      this.window = Math.min(this.maxBytes, Math.max(MIN_WINDOW, this.window * 2));
      this.fetch(lastEnd, this.window, gen);
    }
    return this.serve(off, len);
  }

  private fetch(start: number, want: number, gen: number): boolean {
    if (this.budget.used + want > this.budget.limit) return false;
    this.budget.used += want;
    const slab = this.pool.lease(want);
    const seg: Segment = { start, want, gen, promise: Promise.resolve(Buffer.alloc(0)), slab, settled: false, dropped: false };
    seg.promise = this.client.read(this.ino, start, want, slab.buf).then(
      (data) => {
        seg.data = data;
        return data;
      },
      (err: unknown) => {
        this.drop(seg);
        throw err;
      },
    );
    void seg.promise.then(
      () => this.settle(seg),
      () => this.settle(seg),
    );
    seg.promise.catch(() => undefined); // a prefetch nobody waits for must not be an unhandled rejection
    let i = this.segs.length;
    while (i > 0 && this.segs[i - 1]!.start > start) i--;
    this.segs.splice(i, 0, seg);
    return true;
  }

  private async serve(off: number, len: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let pos = off;
    const end = off + len;
    while (pos < end) {
      const seg = this.segs.find((s) => s.start <= pos && pos < s.start + s.want);
      if (!seg) {
        parts.push(await this.client.read(this.ino, pos, end - pos));
        break;
      }
      seg.used = true;
      const data = await seg.promise;
      const from = pos - seg.start;
      if (data.length <= from) break; // end of file inside this segment
      const to = Math.min(data.length, end - seg.start);
      parts.push(data.subarray(from, to));
      pos = seg.start + to;
      if (to < seg.want && to === data.length) break; // short segment: end of file
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private drop(seg: Segment): void {
    const i = this.segs.indexOf(seg);
    if (i < 0) return;
    this.segs.splice(i, 1);
    this.budget.used -= seg.want;
    seg.dropped = true;
    seg.onHead?.(seg.used === true);
    if (seg.settled) seg.slab?.release();
  }

  private settle(seg: Segment): void {
    seg.settled = true;
    if (seg.dropped) seg.slab?.release();
  }

  dropAll(): void {
    for (const s of [...this.segs]) this.drop(s);
  }
}
