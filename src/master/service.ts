// gRPC handlers of the Master service: map wire messages to the operations and back. Every
// handler goes through unaryHandler (GfsError -> status + gfs-errno, anything else -> INTERNAL).
// Handlers answer once what they changed or read is committed (`core.committed()`, see SyncMode).
import { unaryHandler } from '../common/rpc.js';
import { GfsError, einval } from '../common/errors.js';
import type { AttrReply, Cred__Output, MasterHandlers, TimeSet__Output } from '../generated/gfs/index.js';
import { AttrOps, SETATTR_SIZE, type TimeArg } from './attr-ops.js';
import { packDirPage, toAttr } from './attr.js';
import { ChunkOps, MAX_CHUNKS_PER_CALL, type GetChunksOut } from './chunk-ops.js';
import { ClusterOps } from './cluster-ops.js';
import type { MasterCore } from './core.js';
import { HealthOps } from './health-ops.js';
import { type Cred, type Inode, ROOT_CRED, isDir as isDirInode } from './inode.js';
import { type EntryRef, NamespaceOps } from './namespace-ops.js';
import { MAY_READ, MAY_WRITE, accessOfFlags, checkIo, eacces, mayAccess } from './permissions.js';
import { RequestCache } from './request-cache.js';
import { checkTime } from './time.js';

/** Inodes one Release may name (clients batch theirs: release-batcher.ts). */
export const MAX_RELEASES_PER_CALL = 4096;
/** Names one UnlinkBatch may name (each is a change of its own; the loop is not held longer). */
export const MAX_UNLINKS_PER_CALL = 1024;

/**
 * The unary handlers of the Master service. Session, which serves them over a stream, is added
 * by security.ts; SessionPort, which names the TCP listener serving them, by master.ts.
 */
type KnownKeys<T> = keyof { [K in keyof T as string extends K ? never : K]: T[K] };
export type UnaryMasterHandlers = Pick<MasterHandlers, Exclude<KnownKeys<MasterHandlers>, 'Session' | 'SessionPort'>>;

export function masterHandlers(core: MasterCore): UnaryMasterHandlers {
  const log = core.log;
  const ns = new NamespaceOps(core);
  const chunks = new ChunkOps(core);
  const attrs = new AttrOps(core, chunks);
  const cluster = new ClusterOps(core, chunks);
  const health = new HealthOps(core);
  const attrReply = (inode: Inode) => ({ attr: toAttr(inode) });
  /** Chunk locations with an access token each (none when the cluster runs without tokens). */
  const withTokens = (r: GetChunksOut, mode: 'read' | 'write') => {
    const signer = core.tokens;
    return signer ? { ...r, chunks: r.chunks.map((c) => ({ ...c, token: signer.sign(mode, c.handle, c.version) })) } : r;
  };
  /** The reply of a change that added the entry `at`: the inode, and its directory as it is now. */
  const addedReply = (inode: Inode, at: EntryRef) => {
    let parent: Inode | undefined;
    try {
      parent = ns.locate(at)?.parent;
    } catch {
      parent = undefined;
    }
    return { attr: toAttr(inode), parent: parent && toAttr(parent) };
  };
  /** Data access by (cred, client id) to a file: granted by its open or by its mode (permissions.ts). */
  const io = (ino: number, c: Cred__Output | null, clientId: string, want: number) => {
    const inode = core.ns.get(ino);
    if (inode) checkIo(core.grants, inode, cred(c), clientId ?? '', want);
  };

  const requests = new RequestCache();

  /**
   * A handler answered only once what it changed or read is committed, so no client ever sees
   * a change that a crash of the master could still take back (free when nothing is being
   * logged). A call with a request id runs once however often it is sent (request-cache.ts).
   */
  function committed<Req, Res>(name: string, fn: (req: Req) => Res | Promise<Res>) {
    return unaryHandler<Req, Res>(log, name, (req) =>
      requests.run(name, (req as { requestId?: string }).requestId, async () => {
        const res = await fn(req);
        await core.committed();
        return res;
      }),
    );
  }
  const mutating = committed;
  const reading = committed;

  const handlers: UnaryMasterHandlers = {
    GetAttr: reading('GetAttr', (req) => attrReply(ns.getattr(req.path, req.ino, req.parent, req.name))),
    ReadDir: reading('ReadDir', (req) => {
      const r = ns.readdir(req.path, req.after, req.limit, req.ino);
      return {
        ...(req.records ? { records: packDirPage(r.entries) } : { entries: r.entries.map((e) => ({ name: e.name, attr: toAttr(e.inode) })) }),
        more: r.more,
        dir: toAttr(r.dir),
        parent: r.dir.parent ?? r.dir.ino,
      };
    }),
    Mkdir: mutating('Mkdir', (req) => {
      log.debug({ path: req.path, parent: req.parent, name: req.name }, 'mkdir');
      const at = entryOf(req);
      return addedReply(ns.mkdir(at, req.mode, cred(req.cred), req.umask), at);
    }),
    Create: mutating('Create', (req) => {
      log.debug({ path: req.path, parent: req.parent, name: req.name }, 'create');
      const c = cred(req.cred);
      const at = entryOf(req);
      let existed: number | undefined;
      try {
        existed = req.clientId ? ns.resolve(at).ino : undefined;
      } catch {
        existed = undefined;
      }
      const made = ns.create(at, req.mode, c, req.umask, req.exclusive);
      const reply: AttrReply = addedReply(made, at);
      if (req.clientId) {
        attrs.open('', made.ino, req.clientId);
        // The creator may use what it created; opening an existing file gives what its mode allows.
        const bits = existed === made.ino ? (mayAccess(c, made, MAY_READ) ? MAY_READ : 0) | (mayAccess(c, made, MAY_WRITE) ? MAY_WRITE : 0) : MAY_READ | MAY_WRITE;
        core.grants.grant(made.ino, req.clientId, bits);
        const chunk = req.allocate && existed !== made.ino ? chunks.allocateFirst(made) : undefined;
        if (chunk) {
          reply.chunk = core.tokens ? { ...chunk, token: core.tokens.sign('write', chunk.handle, chunk.version) } : chunk;
          reply.chunkSize = core.cfg.chunkSize;
        }
      }
      return reply;
    }),
    Mknod: mutating('Mknod', (req) => {
      log.debug({ path: req.path, parent: req.parent, name: req.name }, 'mknod');
      const at = entryOf(req);
      return addedReply(ns.mknod(at, req.mode, req.rdev, cred(req.cred), req.umask), at);
    }),
    Unlink: mutating('Unlink', (req) => {
      const r = ns.unlink(entryOf(req));
      return { parent: toAttr(r.parent), attr: r.survivor && toAttr(r.survivor) };
    }),
    UnlinkBatch: mutating('UnlinkBatch', (req) => {
      if (req.entries.length > MAX_UNLINKS_PER_CALL) throw einval(`UnlinkBatch: ${req.entries.length} entries, at most ${MAX_UNLINKS_PER_CALL}`);
      const parents = new Map<number, Inode>();
      const results = req.entries.map((e) => {
        try {
          const r = ns.unlink({ path: '', parent: e.parent, name: e.name }, e.ino);
          parents.set(r.parent.ino, r.parent);
          return { errno: '', message: '' };
        } catch (err) {
          if (!(err instanceof GfsError)) throw err;
          return { errno: err.code, message: err.message };
        }
      });
      return { results, parents: [...parents.values()].map(toAttr) };
    }),
    Rmdir: mutating('Rmdir', (req) => {
      log.debug({ path: req.path, parent: req.parent, name: req.name }, 'rmdir');
      return { parent: toAttr(ns.rmdir(entryOf(req))) };
    }),
    Rename: mutating('Rename', (req) => {
      log.debug({ path: req.src, to: req.dst, srcParent: req.srcParent, dstParent: req.dstParent, flags: req.flags }, 'rename');
      const r = ns.rename({ path: req.src, parent: req.srcParent, name: req.srcName }, { path: req.dst, parent: req.dstParent, name: req.dstName }, req.flags);
      return { parent: toAttr(r.srcParent), dstParent: toAttr(r.dstParent), attr: toAttr(r.moved) };
    }),
    Link: mutating('Link', (req) => {
      const dst = { path: req.dst, parent: req.dstParent, name: req.dstName };
      return addedReply(ns.link(req.src, dst, req.srcIno), dst);
    }),
    Symlink: mutating('Symlink', (req) => {
      const at = entryOf(req);
      return addedReply(ns.symlink(req.target, at, cred(req.cred)), at);
    }),
    Readlink: reading('Readlink', (req) => ({ target: ns.readlink(req.path, req.ino) })),
    SetAttr: mutating('SetAttr', async (req) => {
      const inode = await attrs.setattr({
        path: req.path,
        ino: req.ino,
        cred: cred(req.cred),
        valid: req.valid,
        mode: req.mode,
        uid: req.uid,
        gid: req.gid,
        size: req.size,
        atime: timeArg(req.atime, 'atime'),
        mtime: timeArg(req.mtime, 'mtime'),
      });
      return attrReply(inode);
    }),
    StatFs: unaryHandler(log, 'StatFs', () => cluster.statfs()),
    SetXattr: mutating('SetXattr', (req) => {
      attrs.setxattr(req.path, req.ino, req.name, req.value ?? Buffer.alloc(0), req.flags);
      return {};
    }),
    GetXattr: reading('GetXattr', (req) => ({ value: attrs.getxattr(req.path, req.ino, req.name) })),
    ListXattr: reading('ListXattr', (req) => ({ names: attrs.listxattr(req.path, req.ino) })),
    RemoveXattr: mutating('RemoveXattr', (req) => {
      attrs.removexattr(req.path, req.ino, req.name);
      return {};
    }),
    Open: mutating('Open', async (req) => {
      // As the kernel does at open(2): the access asked for must be allowed now; it is then
      // granted to this client's I/O on the file until it releases it (permissions.ts).
      const target = core.ns.target(req.path, req.ino);
      const want = accessOfFlags(req.flags);
      const c = cred(req.cred);
      if (!isDirInode(target) && !mayAccess(c, target, want)) {
        throw eacces(`uid ${c.uid} may not open inode ${target.ino} for ${want & MAY_WRITE ? 'writing' : 'reading'}`);
      }
      const inode = attrs.open(req.path, req.ino, req.clientId);
      if (isDirInode(inode)) return attrReply(inode);
      core.grants.grant(inode.ino, req.clientId, want);
      const reply: AttrReply = attrReply(inode);
      if (req.locate > 0 && inode.chunks && want & MAY_READ) {
        const span = Math.min(inode.size, Math.min(req.locate, MAX_CHUNKS_PER_CALL) * core.cfg.chunkSize);
        reply.locations = withTokens(await chunks.getChunks(inode.ino, 0, span, false), 'read');
      }
      return reply;
    }),
    Release: mutating('Release', (req) => {
      const inos = req.ino ? [req.ino, ...req.inos] : req.inos;
      if (inos.length > MAX_RELEASES_PER_CALL) throw einval(`Release: ${inos.length} inodes in one call, at most ${MAX_RELEASES_PER_CALL}`);
      for (const ino of inos) {
        attrs.release(ino, req.clientId);
        if (!core.opens.isOpenBy(ino, req.clientId)) core.grants.drop(ino, req.clientId);
      }
      return {};
    }),
    SyncMetadata: unaryHandler(log, 'SyncMetadata', async () => {
      await core.durable();
      return {};
    }),
    GetChunks: mutating('GetChunks', async (req) => {
      if (req.length > 0) io(req.ino, req.cred, req.clientId, req.forWrite ? MAY_WRITE : MAY_READ);
      return withTokens(await chunks.getChunks(req.ino, req.offset, req.length, req.forWrite), req.forWrite ? 'write' : 'read');
    }),
    CommitWrite: mutating('CommitWrite', async (req) => {
      io(req.ino, req.cred, req.clientId, MAY_WRITE);
      const inode = chunks.commitWrite(req.ino, req.end);
      const a = req.attrs;
      const atime = timeArg(a?.atime ?? null, 'atime');
      const mtime = timeArg(a?.mtime ?? null, 'mtime');
      if (!a || ((a.valid & ~SETATTR_SIZE) === 0 && atime === undefined && mtime === undefined)) return attrReply(inode);
      // The size is committed either way; a refused change is reported on its own.
      const changed = await attrs.setattr({
        path: '',
        ino: req.ino,
        cred: cred(a.cred),
        valid: a.valid & ~SETATTR_SIZE,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        atime,
        mtime,
      });
      return attrReply(changed);
    }),
    ReserveAppend: mutating('ReserveAppend', (req) => {
      io(req.ino, req.cred, req.clientId, MAY_WRITE);
      return { offset: chunks.reserveAppend(req.ino, req.length) };
    }),
    ReportBadReplica: unaryHandler(log, 'ReportBadReplica', (req) => {
      if (!chunks.reportBadReplica(req.handle, req.serverId, req.reason)) {
        throw new GfsError('ENOENT', `no chunk ${req.handle}`);
      }
      return {};
    }),
    Register: mutating('Register', (req) => cluster.register(req)),
    Heartbeat: mutating('Heartbeat', (req) => cluster.heartbeat(req)),
    ClusterStatus: unaryHandler(log, 'ClusterStatus', () => cluster.clusterStatus()),
    SetGoal: mutating('SetGoal', (req) => {
      const r = health.setGoal(req.path, req.goal, req.recursive, cred(req.cred));
      return { changed: r.changed, attr: toAttr(r.inode) };
    }),
    Fsck: reading('Fsck', (req) => health.fsck(req.path, req.maxFindings)),
  };
  return handlers;
}

/** The entry a request names: (parent, name) when parent is set, else its path. */
function entryOf(req: { path: string; parent?: number; name?: string }): EntryRef {
  return { path: req.path, parent: req.parent, name: req.name };
}

function cred(c: Cred__Output | null): Cred {
  if (!c) return ROOT_CRED;
  return { uid: c.uid >>> 0, gid: c.gid >>> 0, groups: (c.groups ?? []).map((g) => g >>> 0) };
}

function timeArg(t: TimeSet__Output | null, what: string): TimeArg | undefined {
  if (!t) return undefined;
  const kind = t.kind as string | number;
  if (kind === 'TIME_NOW' || kind === 1) return 'now';
  if (kind === 'TIME_SET' || kind === 2) return checkTime(t.time, what);
  return undefined;
}
