// GfsClient: the library every other part of gfs (mount, CLI, benchmark, tests) uses to talk
// to a cluster. Namespace calls go to the master; bytes move directly between this process
// and chunkservers, many chunk pieces in parallel.
import { randomUUID } from 'node:crypto';
import { packEntries, recordName, recordStarts, unpackEntries, viewOf } from '../common/dirent-pack.js';
import { GfsError, isErrnoName, withoutCode } from '../common/errors.js';
import { MAX_FILE_SIZE } from '../common/limits.js';
import { OpStats } from '../common/op-stats.js';
import { taskLimit } from '../common/task-limit.js';
import type * as pb from '../generated/gfs/index.js';
import type { Attr, Cred, DirListing, Entry, GfsClientApi, PackedListing, SetAttrChanges, StatFs, Target, TimeArg, UnlinkBatchEntry, WriteOptions } from './api.js';
import { ChunkLocator } from './chunk-locator.js';
import { ChunkReader } from './chunk-reader.js';
import { ChunkRpc } from './chunk-rpc.js';
import { ChunkWriter } from './chunk-writer.js';
import { LocationCache } from './location-cache.js';
import { MasterRpc } from './master-rpc.js';
import { LOOKUP_AHEAD_CHUNKS, resolveClientOptions, SIZE_TTL_MS, type ClientOptions, type ResolvedClientOptions } from './options.js';
import { ReleaseBatcher } from './release-batcher.js';
import { ReplicaPicker } from './replica-picker.js';
import { clientSecurity } from './security.js';

export type { ClientOptions };

/** Page size asked of the master for directory listings. */
const READDIR_PAGE = 4096;

const SET_MODE = 1;
const SET_UID = 2;
const SET_GID = 4;
const SET_SIZE = 8;

export class GfsClient implements GfsClientApi {
  readonly clientId = randomUUID();
  /** Count and latency of every master and chunkserver call this client made. */
  readonly stats = new OpStats();
  private readonly opts: ResolvedClientOptions;
  private readonly master: MasterRpc;
  private readonly chunks: ChunkRpc;
  private readonly locator: ChunkLocator;
  private readonly reader: ChunkReader;
  private readonly writer: ChunkWriter;
  private readonly defaultCred: Cred;
  private readonly attrObservers: Array<(attr: Attr) => void> = [];
  private readonly releases: ReleaseBatcher;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: ClientOptions) {
    this.opts = resolveClientOptions(options);
    const security = clientSecurity(this.opts);
    this.master = new MasterRpc(this.clientId, this.opts, this.stats, security);
    this.chunks = new ChunkRpc(this.opts.dataCallTimeoutMs, this.stats, security, this.opts.dataChannel, this.opts.maxParallelPieces);
    this.locator = new ChunkLocator(this.master, new LocationCache(this.opts.locationTtlMs, SIZE_TTL_MS), () => ({ clientId: this.clientId, cred: this.cred() }));
    const limit = taskLimit(this.opts.maxParallelPieces);
    const picker = new ReplicaPicker();
    const common = { chunks: this.chunks, locator: this.locator, limit, pieceBytes: this.opts.pieceBytes, log: this.opts.log };
    this.reader = new ChunkReader({ ...common, pieceBytes: this.opts.readPieceBytes, master: this.master, picker });
    this.writer = new ChunkWriter({ ...common, dirtyFilesMax: this.opts.dirtyFilesMax });
    this.defaultCred = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };
    this.releases = new ReleaseBatcher((inos) => this.call<pb.ReleaseRequest, unknown>('Release', { inos, clientId: this.clientId }).then(() => undefined));
  }

  private cred(c?: Cred): pb.Cred {
    const x = c ?? this.defaultCred;
    return { uid: x.uid, gid: x.gid, groups: x.groups ?? [] };
  }

  private call<Req, Res>(method: string, req: Req, idempotent = false): Promise<Res> {
    if (this.closed) return Promise.reject(new GfsError('EBADF', 'client is closed'));
    return this.master.call<Req, Res>(method as never, req, idempotent);
  }

  private static addr(target: Target): { path: string; ino: number } {
    return typeof target === 'number' ? { path: '', ino: target } : { path: target, ino: 0 };
  }

  private static entry(at: Entry): { path: string; parent: number; name: string } {
    return typeof at === 'string' ? { path: at, parent: 0, name: '' } : { path: '', parent: at.parent, name: at.name };
  }

  /** Tells `fn` every attr the master sends besides the one a call returns (directories a change touched). */
  observeAttrs(fn: (attr: Attr) => void): void {
    this.attrObservers.push(fn);
  }

  private fresh(...attrs: Array<Attr | null | undefined>): void {
    for (const a of attrs) if (a) for (const fn of this.attrObservers) fn(a);
  }

  private async added(method: string, req: unknown): Promise<Attr> {
    const r = await this.call<unknown, pb.AttrReply__Output>(method, req);
    this.fresh(r.parent);
    return r.attr!;
  }

  private async changed(method: string, req: unknown): Promise<Attr | undefined> {
    const r = await this.call<unknown, pb.ChangeReply__Output>(method, req);
    this.fresh(r.parent, r.dstParent);
    return r.attr ?? undefined;
  }

  // ------------------------------------------------------------------ namespace

  async getattr(target: Target): Promise<Attr> {
    const r = await this.call<pb.GetAttrRequest, pb.AttrReply__Output>('GetAttr', GfsClient.addr(target), true);
    return r.attr!;
  }

  async lookup(parent: number, name: string): Promise<Attr> {
    const r = await this.call<pb.GetAttrRequest, pb.AttrReply__Output>('GetAttr', { path: '', ino: 0, parent, name }, true);
    return r.attr!;
  }

  async readdir(dir: Target): Promise<DirListing> {
    const r = await this.readdirPacked(dir);
    const out: DirListing = unpackEntries(r.records);
    out.dir = r.dir;
    out.parent = r.parent;
    return out;
  }

  async readdirPacked(dir: Target): Promise<PackedListing> {
    const pages: Buffer[] = [];
    let after = '';
    for (;;) {
      const req: pb.ReadDirRequest = { ...GfsClient.addr(dir), after, limit: READDIR_PAGE, records: true };
      const r = await this.call<pb.ReadDirRequest, pb.ReadDirReply__Output>('ReadDir', req, true);
      // A master from before records answers with entries.
      const page = r.records.length > 0 || r.entries.length === 0 ? r.records : packEntries(r.entries.map((e) => ({ name: e.name, attr: e.attr! })));
      pages.push(page);
      if (!r.more || page.length === 0) {
        return { records: pages.length === 1 ? pages[0]! : Buffer.concat(pages), dir: r.dir ?? undefined, parent: r.parent };
      }
      const dv = viewOf(page);
      const starts = recordStarts(page, dv);
      after = recordName(page, dv, starts[starts.length - 2]!);
    }
  }

  mkdir(at: Entry, mode: number, cred?: Cred): Promise<Attr> {
    return this.added('Mkdir', { ...GfsClient.entry(at), mode, cred: this.cred(cred) });
  }

  async create(at: Entry, mode: number, cred?: Cred, opts?: { exclusive?: boolean; open?: boolean; forWrite?: boolean }): Promise<Attr> {
    const req: pb.CreateRequest = {
      ...GfsClient.entry(at),
      mode,
      cred: this.cred(cred),
      exclusive: opts?.exclusive ?? false,
      clientId: opts?.open ? this.clientId : '',
      allocate: !!(opts?.open && opts.forWrite),
    };
    const r = await this.call<pb.CreateRequest, pb.AttrReply__Output>('Create', req);
    this.fresh(r.parent);
    const attr = r.attr!;
    if (opts?.open) this.locator.cache.setSize(attr.ino, attr.size);
    // A new file opened to be written: its first chunk came leased with the reply.
    if (r.chunk) this.locator.learnWrite(attr.ino, [r.chunk], r.chunkSize);
    return attr;
  }

  mknod(at: Entry, mode: number, rdev: number, cred?: Cred): Promise<Attr> {
    return this.added('Mknod', { ...GfsClient.entry(at), mode, rdev, cred: this.cred(cred) });
  }

  unlink(at: Entry, cred?: Cred): Promise<Attr | undefined> {
    return this.changed('Unlink', { ...GfsClient.entry(at), cred: this.cred(cred) });
  }

  async unlinkBatch(entries: UnlinkBatchEntry[]): Promise<Array<GfsError | undefined>> {
    if (entries.length === 0) return [];
    const r = await this.call<pb.UnlinkBatchRequest, pb.UnlinkBatchReply__Output>('UnlinkBatch', { entries });
    this.fresh(...r.parents);
    return entries.map((e, i) => {
      const res = r.results[i];
      if (!res) return new GfsError('EIO', `UnlinkBatch: no result for "${e.name}" in directory ${e.parent}`);
      return res.errno ? GfsError.quiet(isErrnoName(res.errno) ? res.errno : 'EIO', withoutCode(res.message)) : undefined;
    });
  }

  async rmdir(at: Entry, cred?: Cred): Promise<void> {
    await this.changed('Rmdir', { ...GfsClient.entry(at), cred: this.cred(cred) });
  }

  rename(src: Entry, dst: Entry, flags = 0, cred?: Cred): Promise<Attr | undefined> {
    const s = GfsClient.entry(src);
    const d = GfsClient.entry(dst);
    const req: pb.RenameRequest = { src: s.path, srcParent: s.parent, srcName: s.name, dst: d.path, dstParent: d.parent, dstName: d.name, flags, cred: this.cred(cred) };
    return this.changed('Rename', req);
  }

  link(existing: Target, at: Entry, cred?: Cred): Promise<Attr> {
    const src = GfsClient.addr(existing);
    const d = GfsClient.entry(at);
    const req: pb.LinkRequest = { src: src.path, srcIno: src.ino, dst: d.path, dstParent: d.parent, dstName: d.name, cred: this.cred(cred) };
    return this.added('Link', req);
  }

  symlink(target: string, at: Entry, cred?: Cred): Promise<Attr> {
    return this.added('Symlink', { target, ...GfsClient.entry(at), cred: this.cred(cred) });
  }

  async readlink(target: Target): Promise<string> {
    return (await this.call<pb.GetAttrRequest, pb.ReadlinkReply__Output>('Readlink', GfsClient.addr(target), true)).target;
  }

  private setAttrRequest(target: Target, changes: SetAttrChanges, cred?: Cred): pb.SetAttrRequest {
    let valid = 0;
    if (changes.mode !== undefined) valid |= SET_MODE;
    if (changes.uid !== undefined) valid |= SET_UID;
    if (changes.gid !== undefined) valid |= SET_GID;
    if (changes.size !== undefined) {
      checkSize(changes.size);
      valid |= SET_SIZE;
    }
    return {
      ...GfsClient.addr(target),
      cred: this.cred(cred),
      valid,
      mode: changes.mode ?? 0,
      uid: changes.uid ?? 0,
      gid: changes.gid ?? 0,
      size: changes.size ?? 0,
      atime: timeSet(changes.atime),
      mtime: timeSet(changes.mtime),
    };
  }

  async setattr(target: Target, changes: SetAttrChanges, cred?: Cred): Promise<Attr> {
    const req = this.setAttrRequest(target, changes, cred);
    const attr = (await this.call<pb.SetAttrRequest, pb.AttrReply__Output>('SetAttr', req)).attr!;
    if (changes.size !== undefined) this.locator.cache.invalidate(attr.ino);
    return attr;
  }

  truncate(target: Target, size: number, cred?: Cred): Promise<Attr> {
    return this.setattr(target, { size }, cred);
  }

  statfs(): Promise<StatFs> {
    return this.call<pb.Empty, pb.StatFsReply__Output>('StatFs', {}, true);
  }

  // --------------------------------------------------------------------- xattrs

  async setxattr(target: Target, name: string, value: Buffer, flags = 0, cred?: Cred): Promise<void> {
    await this.call<pb.XattrRequest, unknown>('SetXattr', { ...GfsClient.addr(target), name, value, flags, cred: this.cred(cred) });
  }

  async getxattr(target: Target, name: string): Promise<Buffer> {
    return (await this.call<pb.XattrRequest, pb.XattrValueReply__Output>('GetXattr', { ...GfsClient.addr(target), name }, true)).value;
  }

  async listxattr(target: Target): Promise<string[]> {
    return (await this.call<pb.XattrRequest, pb.XattrListReply__Output>('ListXattr', GfsClient.addr(target), true)).names;
  }

  async removexattr(target: Target, name: string, cred?: Cred): Promise<void> {
    await this.call<pb.XattrRequest, unknown>('RemoveXattr', { ...GfsClient.addr(target), name, cred: this.cred(cred) });
  }

  // ----------------------------------------------------------------- file data

  async open(target: Target, flags = 0, cred?: Cred): Promise<Attr> {
    // Opened to be read: the first chunks' locations come with the answer.
    const locate = (flags & 3) !== 1 ? LOOKUP_AHEAD_CHUNKS : 0;
    const req: pb.OpenRequest = { ...GfsClient.addr(target), clientId: this.clientId, flags, cred: this.cred(cred), locate };
    const r = await this.call<pb.OpenRequest, pb.AttrReply__Output>('Open', req);
    const attr = r.attr!;
    this.locator.cache.setSize(attr.ino, attr.size);
    if (r.locations) this.locator.learnRead(attr.ino, r.locations);
    return attr;
  }

  /**
   * open(), and at the same time a read of the first `headBytes` of the file from where this
   * client last saw its first chunk. A cold small file then costs one round trip, not two.
   * `head` resolves to the bytes only if the open's answer names that same chunk (handle and
   * version) and they reach the size it gives; to undefined otherwise. The read starts after
   * the open was asked for, so it sees every change closed before it (close-to-open).
   */
  async openWithHead(ino: number, flags: number, cred: Cred | undefined, headBytes: number): Promise<{ attr: Attr; head?: Promise<Buffer | undefined> }> {
    const guess = headBytes > 0 ? this.locator.cache.hint(ino, 0) : undefined;
    const read = guess ? this.reader.readOnce(guess, 0, headBytes).catch(() => undefined) : undefined;
    const attr = await this.open(ino, flags, cred);
    if (!read || !guess) return { attr };
    const head = read.then((got) => {
      const now = this.locator.cache.forRead(attr.ino, 0);
      if (!got || !now || now.handle !== guess.handle || now.version !== guess.version) return undefined;
      const want = Math.min(attr.size, headBytes);
      return got.length >= want ? got.subarray(0, want) : undefined;
    });
    return { attr, head };
  }

  /** Resolves once the master has applied the release; batched (release-batcher.ts). */
  async release(ino: number): Promise<void> {
    checkIno(ino);
    await this.releases.release(ino);
  }

  /** Not async: an async function returning a promise costs a read three more microtask turns. */
  read(ino: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    try {
      checkIno(ino);
      checkRange(offset, length);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.reader.read(ino, offset, length, into);
  }

  async write(ino: number, offset: number, data: Buffer, opts?: WriteOptions): Promise<Attr> {
    await this.writeData(ino, offset, data, opts);
    return this.commitWrite(ino, offset + data.length);
  }

  async writeData(ino: number, offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    checkIno(ino);
    checkRange(offset, data.length);
    if (this.closed) throw new GfsError('EBADF', 'client is closed');
    await this.writer.write(ino, offset, data, opts?.sync ?? false);
  }

  async commitWrite(ino: number, end: number, attrs?: { changes: SetAttrChanges; cred?: Cred }): Promise<Attr> {
    if (attrs?.changes.size !== undefined) throw new GfsError('EINVAL', 'commitWrite: a size change is a truncate, not an attribute of the commit');
    const req: pb.CommitWriteRequest = { ino, end, cred: this.cred(), clientId: this.clientId };
    if (attrs) req.attrs = this.setAttrRequest(ino, attrs.changes, attrs.cred);
    const attr = (await this.call<pb.CommitWriteRequest, pb.AttrReply__Output>('CommitWrite', req)).attr!;
    this.locator.cache.setSize(ino, attr.size);
    return attr;
  }

  async append(ino: number, data: Buffer): Promise<number> {
    checkRange(0, data.length);
    const { offset } = await this.call<pb.ReserveAppendRequest, pb.ReserveAppendReply__Output>('ReserveAppend', {
      ino,
      length: data.length,
      cred: this.cred(),
      clientId: this.clientId,
    });
    await this.writeData(ino, offset, data);
    this.locator.cache.growSize(ino, offset + data.length);
    return offset;
  }

  /** The data written to `ino` is on every replica's disk, and the master's metadata on its own. */
  async fsync(ino: number): Promise<void> {
    await Promise.all([this.writer.sync(ino, async () => (await this.getattr(ino)).size), this.syncMetadata()]);
  }

  /** Every namespace change made so far is on the master's disk. */
  async syncMetadata(): Promise<void> {
    await this.call<pb.Empty, unknown>('SyncMetadata', {}, true);
  }

  // ------------------------------------------------------------- conveniences

  /** Creates (or truncates) `path` and writes all of `data` to it. */
  async writeFile(path: string, data: Buffer, mode = 0o644): Promise<Attr> {
    const attr = await this.create(path, 0o100000 | mode);
    if (attr.size > 0) await this.truncate(attr.ino, 0);
    if (data.length === 0) return this.getattr(attr.ino);
    return this.write(attr.ino, 0, data);
  }

  async readFile(path: string): Promise<Buffer> {
    const attr = await this.getattr(path);
    if ((attr.mode & 0o170000) === 0o040000) throw new GfsError('EISDIR', `is a directory: ${path}`);
    this.locator.cache.setSize(attr.ino, attr.size);
    return this.read(attr.ino, 0, attr.size);
  }

  clusterStatus(): Promise<pb.ClusterStatusReply__Output> {
    return this.call<pb.Empty, pb.ClusterStatusReply__Output>('ClusterStatus', {}, true);
  }

  /** Replication goal of a file or directory (inherited by files created in it later). */
  async setGoal(path: string, goal: number, opts?: { recursive?: boolean; cred?: Cred }): Promise<pb.SetGoalReply__Output> {
    const req: pb.SetGoalRequest = { path, goal, recursive: opts?.recursive ?? false, cred: this.cred(opts?.cred) };
    return this.call<pb.SetGoalRequest, pb.SetGoalReply__Output>('SetGoal', req, true);
  }

  /** Chunks under `path` that are not at their goal (under-replicated, missing, corrupt), with totals. */
  fsck(path = '/', maxFindings = 0): Promise<pb.FsckReply__Output> {
    return this.call<pb.FsckRequest, pb.FsckReply__Output>('Fsck', { path, maxFindings }, true);
  }

  /** Idempotent; every caller gets the same close (which first sends batched releases). */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    // Releases still batched go out first: the master frees unlinked files on them.
    await this.releases.flush();
    this.closed = true;
    this.master.close();
    this.chunks.close();
  }
}

function timeSet(t: TimeArg | undefined): pb.TimeSet {
  if (t === undefined) return { kind: 'TIME_OMIT' };
  if (t === 'now') return { kind: 'TIME_NOW' };
  return { kind: 'TIME_SET', time: { sec: t.sec, nsec: t.nsec } };
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new GfsError('EINVAL', `bad size ${size}`);
  if (size > MAX_FILE_SIZE) throw new GfsError('EFBIG', `size ${size} exceeds the largest file (${MAX_FILE_SIZE} bytes)`);
}

function checkIno(ino: number): void {
  if (!Number.isSafeInteger(ino) || ino <= 0) throw new GfsError('EINVAL', `bad inode number ${ino}`);
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new GfsError('EINVAL', `bad offset ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new GfsError('EINVAL', `bad length ${length}`);
  if (offset + length > MAX_FILE_SIZE) throw new GfsError('EFBIG', `range ends past the largest file (${MAX_FILE_SIZE} bytes)`);
}
