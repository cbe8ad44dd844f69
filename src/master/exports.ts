// Exports: which client addresses may use which subtree, read-only or read-write, with root
// squash / all squash (the idea of MooseFS's mfsexports.cfg). `gfs master --exports FILE`.
//
// One rule per line, `#` starts a comment; the first rule whose address matches the client's
// (the peer address of its connection) applies; a client no rule matches is refused:
//
//   ADDRESS[/MASK]  PATH  [OPTION[,OPTION...]] ...
//     ADDRESS  *  |  IPv4 (a.b.c.d)  |  IPv6 literal;  MASK: prefix bits or a dotted mask
//     PATH     the subtree the client sees as its "/" (paths it sends are resolved under it)
//     ro | rw                 read-only (mutations answer EROFS) or read-write (default rw)
//     maproot=UID[:GID]       calls as uid 0 run as UID:GID (root squash; GID defaults to UID)
//     mapall=UID[:GID]        every call runs as UID:GID (all squash)
//
// Without --exports the master behaves as `*  /  rw` (the one-machine default).
//
// Subtrees are enforced chroot-style: every path a client sends is normalised (".." cannot
// climb above its "/") and prefixed with PATH; the export root itself cannot be removed or
// renamed. Requests naming an inode number directly are allowed for directories under PATH
// and for files this export has already been shown by a path (a bounded per-rule set), so
// guessing inode numbers does not reach outside. Calls made with the server role (chunkservers)
// are not subject to exports.
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { LRUCache } from 'lru-cache';
import { roleOf } from '../common/auth.js';
import { packedInodes } from '../common/dirent-pack.js';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { splitPath } from '../common/paths.js';
import type { UnaryMasterHandlers } from './service.js';
import type { MasterCore } from './core.js';
import { isDir } from './inode.js';

export interface Squash {
  uid: number;
  gid: number;
}

export interface ExportRule {
  /** null = any address. */
  net: { v6: boolean; addr: bigint; bits: number } | null;
  /** Normalised absolute path of the exported subtree. */
  path: string;
  readOnly: boolean;
  maproot?: Squash;
  mapall?: Squash;
  /** Where the rule came from, for messages. */
  source: string;
}

/** The rule in force without an exports file. */
export const DEFAULT_EXPORT: ExportRule = { net: null, path: '/', readOnly: false, source: 'default (* / rw)' };
/** Files per export remembered as reachable by inode number. */
const SEEN_MAX = 1_000_000;

function ipToBig(ip: string): { v6: boolean; addr: bigint } | undefined {
  if (isIPv4(ip)) return { v6: false, addr: ip.split('.').reduce((a, x) => (a << 8n) | BigInt(Number(x)), 0n) };
  if (isIPv6(ip)) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (mapped) return ipToBig(mapped[1]!);
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    if (groups.length !== 8) return undefined;
    return { v6: true, addr: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n) };
  }
  return undefined;
}

function parseId(s: string, what: string): Squash {
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(s);
  const uid = m ? Number(m[1]) : NaN;
  const gid = m?.[2] !== undefined ? Number(m[2]) : uid;
  if (!m || uid > 0xffffffff || gid > 0xffffffff) throw new Error(`${what}: expected UID[:GID], got "${s}"`);
  return { uid, gid };
}

export function parseExports(text: string, file = 'exports'): ExportRule[] {
  const rules: ExportRule[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const where = `${file}:${i + 1}`;
    const bad = (msg: string) => new GfsError('EINVAL', `${where}: ${msg}`);
    const [addrText, pathText, ...optWords] = line.split(/\s+/);
    if (!addrText || !pathText) throw bad('expected ADDRESS[/MASK] PATH [options]');
    let net: ExportRule['net'] = null;
    if (addrText !== '*') {
      const [ip, mask] = addrText.split('/') as [string, string | undefined];
      const a = ipToBig(ip);
      if (!a) throw bad(`bad address "${ip}"`);
      const width = a.v6 ? 128 : 32;
      let bits = width;
      if (mask !== undefined) {
        if (/^\d{1,3}$/.test(mask)) bits = Number(mask);
        else {
          const m = ipToBig(mask);
          if (!m || m.v6 !== a.v6) throw bad(`bad mask "${mask}"`);
          const s = m.addr.toString(2).padStart(width, '0');
          bits = s.indexOf('0') === -1 ? width : s.indexOf('0');
          if (s.slice(bits).includes('1')) throw bad(`mask "${mask}" is not contiguous`);
        }
        if (bits > width) throw bad(`mask /${bits} longer than the address`);
      }
      net = { v6: a.v6, addr: a.addr, bits };
    }
    let path: string;
    try {
      path = '/' + splitPath(pathText).join('/');
    } catch (err) {
      throw bad(`bad path "${pathText}": ${(err as Error).message}`);
    }
    const rule: ExportRule = { net, path, readOnly: false, source: `${where}: ${line}` };
    for (const opt of optWords.join(',').split(',').map((o) => o.trim()).filter(Boolean)) {
      try {
        if (opt === 'ro' || opt === 'readonly') rule.readOnly = true;
        else if (opt === 'rw' || opt === 'readwrite') rule.readOnly = false;
        else if (opt.startsWith('maproot=')) rule.maproot = parseId(opt.slice(8), 'maproot');
        else if (opt.startsWith('mapall=')) rule.mapall = parseId(opt.slice(7), 'mapall');
        else throw new Error(`unknown option "${opt}" (known: ro, rw, maproot=UID[:GID], mapall=UID[:GID])`);
      } catch (err) {
        throw bad((err as Error).message);
      }
    }
    rules.push(rule);
  });
  return rules;
}

export function loadExports(file: string): ExportRule[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GfsError('EINVAL', `cannot read exports file ${file}: ${(err as Error).message}`);
  }
  return parseExports(text, file);
}

/** The host part of a grpc peer string ("1.2.3.4:5", "[::1]:5", "ipv4:1.2.3.4:5"). */
export function peerHost(peer: string): string {
  const m = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return m ? m[1]! : peer;
}

export function matchExport(rules: ExportRule[], host: string): ExportRule | undefined {
  const a = ipToBig(host);
  for (const r of rules) {
    if (!r.net) return r;
    if (!a || a.v6 !== r.net.v6) continue;
    const width = BigInt(r.net.v6 ? 128 : 32);
    const shift = width - BigInt(r.net.bits);
    if (a.addr >> shift === r.net.addr >> shift) return r;
  }
  return undefined;
}

/** Methods that change the namespace or data: refused on a read-only export. */
const MUTATING = new Set([
  'Mkdir', 'Create', 'Mknod', 'Unlink', 'UnlinkBatch', 'Rmdir', 'Rename', 'Link', 'Symlink', 'SetAttr', 'SetXattr',
  'RemoveXattr', 'CommitWrite', 'ReserveAppend', 'SetGoal',
]);
/** Methods whose request carries a cred to squash. */
const WITH_CRED = new Set([
  'Mkdir', 'Create', 'Mknod', 'Unlink', 'Rmdir', 'Rename', 'Link', 'Symlink', 'SetAttr', 'SetXattr', 'GetXattr',
  'ListXattr', 'RemoveXattr', 'Open', 'GetChunks', 'CommitWrite', 'ReserveAppend', 'SetGoal',
]);
const PATH_FIELDS = ['path', 'src', 'dst'] as const;
/** Fields naming an inode (an entry's directory, a file to link): each must be in the export. */
const INO_FIELDS = ['ino', 'parent', 'srcParent', 'dstParent', 'srcIno'] as const;
const O_ACCMODE = 3;
const O_TRUNC = 0o1000;

interface Cred {
  uid: number;
  gid: number;
  groups: number[];
}

function squash(rule: ExportRule, c: Cred | null | undefined): Cred {
  const cred = c ?? { uid: 0, gid: 0, groups: [] };
  if (rule.mapall) return { uid: rule.mapall.uid, gid: rule.mapall.gid, groups: [] };
  if (rule.maproot && cred.uid === 0) return { uid: rule.maproot.uid, gid: rule.maproot.gid, groups: [] };
  return cred;
}

const erofs = (what: string) => new GfsError('EROFS', `${what}: read-only export`);

/**
 * Wraps the master's handlers with the export rules: picks the rule of the caller's address,
 * refuses mutations on read-only exports, squashes creds, and maps paths into the subtree.
 */
export function exportGuard(core: MasterCore, handlers: UnaryMasterHandlers, rules: ExportRule[], log: Logger): UnaryMasterHandlers {
  const seen = new Map<ExportRule, LRUCache<number, true>>();
  const seenOf = (r: ExportRule) => {
    let s = seen.get(r);
    if (!s) seen.set(r, (s = new LRUCache<number, true>({ max: SEEN_MAX })));
    return s;
  };
  const rootOf = (r: ExportRule) => core.ns.resolve(r.path);

  const mapPath = (r: ExportRule, p: string, method: string): string => {
    if (typeof p !== 'string' || p === '') return p;
    const parts = splitPath(p);
    if (parts.length === 0 && MUTATING.has(method) && method !== 'SetAttr' && method !== 'SetXattr' && method !== 'RemoveXattr' && method !== 'SetGoal') {
      throw new GfsError('EBUSY', `${method}: the root of an export cannot be changed`);
    }
    return r.path === '/' ? `/${parts.join('/')}` : `${r.path}${parts.length ? '/' : ''}${parts.join('/')}`;
  };

  const checkIno = (r: ExportRule, ino: unknown) => {
    if (r.path === '/' || typeof ino !== 'number' || ino === 0) return;
    const inode = core.ns.get(ino);
    if (!inode) return; // the handler answers ENOENT
    if (isDir(inode) ? core.ns.isAncestorOrSelf(rootOf(r), inode) : seenOf(r).has(ino)) return;
    throw new GfsError('ENOENT', `no inode ${ino} in this export`);
  };

  const remember = (r: ExportRule, res: unknown) => {
    if (r.path === '/' || !res || typeof res !== 'object') return;
    const s = seenOf(r);
    const note = (a: { ino?: number } | null | undefined) => {
      if (a && typeof a.ino === 'number') s.set(a.ino, true);
    };
    const o = res as { attr?: { ino?: number }; entries?: Array<{ attr?: { ino?: number } }>; records?: Buffer; findings?: Array<{ path: string }> };
    note(o.attr);
    for (const e of o.entries ?? []) note(e.attr);
    // A packed listing shows its entries just as much as a plain one.
    if (o.records?.length) for (const ino of packedInodes(o.records)) s.set(ino, true);
    for (const f of o.findings ?? []) {
      if (f.path === r.path) f.path = '/';
      else if (f.path.startsWith(`${r.path}/`)) f.path = f.path.slice(r.path.length);
    }
  };

  const out: Record<string, unknown> = {};
  for (const [method, h] of Object.entries(handlers as unknown as Record<string, grpc.handleUnaryCall<unknown, unknown>>)) {
    if (method === 'Register' || method === 'Heartbeat') {
      out[method] = h;
      continue;
    }
    out[method] = (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (roleOf(call) === 'server') return h(call, cb);
      let rule: ExportRule | undefined;
      const host = peerHost(call.getPeer());
      try {
        rule = matchExport(rules, host);
        if (!rule) throw new GfsError('EACCES', `no export rule admits address ${host}`);
        const req = call.request;
        if (rule.readOnly) {
          if (MUTATING.has(method)) throw erofs(method);
          if (method === 'GetChunks' && req.forWrite) throw erofs('write');
          if (method === 'Open' && typeof req.flags === 'number' && ((req.flags & O_ACCMODE) !== 0 || (req.flags & O_TRUNC) !== 0)) throw erofs('open for writing');
        }
        if ((rule.maproot || rule.mapall) && WITH_CRED.has(method)) {
          req.cred = squash(rule, req.cred as Cred | null);
          // Attribute changes folded into a commit carry their own cred: squashed the same way.
          const folded = req.attrs as { cred?: Cred | null } | null | undefined;
          if (folded) folded.cred = squash(rule, folded.cred);
        }
        if (rule.path !== '/') {
          if (method === 'Fsck' && (req.path === '' || req.path === undefined)) req.path = '/';
          for (const f of PATH_FIELDS) if (typeof req[f] === 'string') req[f] = mapPath(rule, req[f] as string, method);
          for (const f of INO_FIELDS) checkIno(rule, req[f]);
          if (method === 'UnlinkBatch') for (const e of (req.entries as Array<{ parent?: unknown }> | undefined) ?? []) checkIno(rule, e.parent);
        }
      } catch (err) {
        log.debug({ rpc: method, peer: host, err: (err as Error).message }, 'refused by exports');
        return cb((err instanceof GfsError ? err : new GfsError('EINVAL', String(err))).toServiceError() as grpc.ServiceError);
      }
      const r = rule;
      h(call, (err, res, ...rest) => {
        if (!err) remember(r, res);
        cb(err, res, ...rest);
      });
    };
  }
  return out as unknown as UnaryMasterHandlers;
}
