// Chunk metadata: handle -> (file, index, version) is persistent state changed only by
// MasterState.apply; replica locations are not persistent (rebuilt from chunkserver reports).

export interface ChunkMeta {
  handle: number;
  ino: number;
  index: number;
  version: number;
}

/** Called when a chunk leaves the table, with the servers that held it (to queue deletion). */
export type FreedListener = (handle: number, servers: string[]) => void;

export class ChunkTable {
  readonly chunks = new Map<number, ChunkMeta>();
  /** Next handle to hand out (carried in mutation records, advanced by apply). */
  nextHandle = 1;
  /** Not persistent: handle -> servers holding an up-to-date replica. */
  private readonly locations = new Map<number, Set<string>>();
  /** Not persistent: server -> handles it holds (inverse of `locations`). */
  private readonly byServer = new Map<string, Set<number>>();
  /** Not persistent: handle -> bytes, as last reported by an up-to-date replica. */
  private readonly lengths = new Map<number, number>();
  onFreed: FreedListener = () => {};
  /** Called when a chunk loses a replica location (the re-replication scheduler listens). */
  onReplicaRemoved: (handle: number, server: string) => void = () => {};

  get(handle: number): ChunkMeta | undefined {
    return this.chunks.get(handle);
  }

  get size(): number {
    return this.chunks.size;
  }

  // ---- persistent (called from apply only)

  add(meta: ChunkMeta): void {
    this.chunks.set(meta.handle, meta);
    if (meta.handle >= this.nextHandle) this.nextHandle = meta.handle + 1;
  }

  remove(handle: number): void {
    if (!this.chunks.delete(handle)) return;
    const servers = this.replicas(handle);
    for (const s of servers) this.byServer.get(s)?.delete(handle);
    this.locations.delete(handle);
    this.lengths.delete(handle);
    this.onFreed(handle, servers);
  }

  // ---- replica locations (not persistent)

  replicas(handle: number): string[] {
    return [...(this.locations.get(handle) ?? [])];
  }

  hasReplica(handle: number, server: string): boolean {
    return this.locations.get(handle)?.has(server) ?? false;
  }

  addReplica(handle: number, server: string): void {
    if (!this.chunks.has(handle)) return;
    let set = this.locations.get(handle);
    if (!set) this.locations.set(handle, (set = new Set()));
    set.add(server);
    let mine = this.byServer.get(server);
    if (!mine) this.byServer.set(server, (mine = new Set()));
    mine.add(handle);
  }

  removeReplica(handle: number, server: string): boolean {
    const removed = this.locations.get(handle)?.delete(server) ?? false;
    this.byServer.get(server)?.delete(handle);
    if (removed) this.onReplicaRemoved(handle, server);
    return removed;
  }

  /** Records the length an up-to-date replica reported (lengths only grow within a version). */
  noteLength(handle: number, length: number): void {
    if (!this.chunks.has(handle) || !(length >= 0)) return;
    this.lengths.set(handle, length);
  }

  /** Last reported length, or undefined when no report carried one yet. */
  lengthOf(handle: number): number | undefined {
    return this.lengths.get(handle);
  }

  setReplicas(handle: number, servers: Iterable<string>): void {
    for (const s of this.replicas(handle)) this.removeReplica(handle, s);
    for (const s of servers) this.addReplica(handle, s);
  }

  handlesOn(server: string): number[] {
    return [...(this.byServer.get(server) ?? [])];
  }

  countOn(server: string): number {
    return this.byServer.get(server)?.size ?? 0;
  }
}
