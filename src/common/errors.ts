// The error vocabulary shared by every gfs process. A GfsError carries a POSIX error name
// (`code`) that survives the wire: servers send it as gRPC status + `gfs-errno` metadata and
// clients rebuild the same class, so the FUSE layer can answer the kernel with the right errno.
import { constants as osConstants } from 'node:os';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';

export type ErrnoName =
  | 'EPERM' | 'ENOENT' | 'EIO' | 'ENXIO' | 'EBADF' | 'EAGAIN' | 'ENOMEM' | 'EACCES' | 'EBUSY'
  | 'EEXIST' | 'EXDEV' | 'ENODEV' | 'ENOTDIR' | 'EISDIR' | 'EINVAL' | 'EFBIG' | 'ENOSPC'
  | 'EROFS' | 'EMLINK' | 'ERANGE' | 'ENAMETOOLONG' | 'ENOSYS' | 'ENOTEMPTY' | 'ELOOP'
  | 'ENODATA' | 'ENOTSUP' | 'ETIMEDOUT' | 'ECONNREFUSED' | 'EOVERFLOW' | 'ESTALE' | 'E2BIG'
  | 'EHOSTDOWN';

/** POSIX error name -> the gRPC status a server answers with. */
const GRPC_STATUS_OF: Record<ErrnoName, GrpcStatus> = {
  EPERM: GrpcStatus.PERMISSION_DENIED,
  EACCES: GrpcStatus.PERMISSION_DENIED,
  EROFS: GrpcStatus.PERMISSION_DENIED,
  ENOENT: GrpcStatus.NOT_FOUND,
  ENODATA: GrpcStatus.NOT_FOUND,
  ENXIO: GrpcStatus.NOT_FOUND,
  ENODEV: GrpcStatus.NOT_FOUND,
  EEXIST: GrpcStatus.ALREADY_EXISTS,
  ENOTDIR: GrpcStatus.FAILED_PRECONDITION,
  EISDIR: GrpcStatus.FAILED_PRECONDITION,
  ENOTEMPTY: GrpcStatus.FAILED_PRECONDITION,
  EXDEV: GrpcStatus.FAILED_PRECONDITION,
  ELOOP: GrpcStatus.FAILED_PRECONDITION,
  EMLINK: GrpcStatus.FAILED_PRECONDITION,
  EBUSY: GrpcStatus.FAILED_PRECONDITION,
  ESTALE: GrpcStatus.FAILED_PRECONDITION,
  EBADF: GrpcStatus.FAILED_PRECONDITION,
  EINVAL: GrpcStatus.INVALID_ARGUMENT,
  ENAMETOOLONG: GrpcStatus.INVALID_ARGUMENT,
  ERANGE: GrpcStatus.OUT_OF_RANGE,
  EFBIG: GrpcStatus.OUT_OF_RANGE,
  EOVERFLOW: GrpcStatus.OUT_OF_RANGE,
  E2BIG: GrpcStatus.OUT_OF_RANGE,
  ENOSPC: GrpcStatus.RESOURCE_EXHAUSTED,
  ENOMEM: GrpcStatus.RESOURCE_EXHAUSTED,
  EAGAIN: GrpcStatus.UNAVAILABLE,
  EHOSTDOWN: GrpcStatus.UNAVAILABLE,
  ECONNREFUSED: GrpcStatus.UNAVAILABLE,
  ETIMEDOUT: GrpcStatus.DEADLINE_EXCEEDED,
  ENOSYS: GrpcStatus.UNIMPLEMENTED,
  ENOTSUP: GrpcStatus.UNIMPLEMENTED,
  EIO: GrpcStatus.INTERNAL,
};

/** gRPC status without a `gfs-errno` (transport failures, foreign servers) -> POSIX name. */
const ERRNO_OF_STATUS: Partial<Record<GrpcStatus, ErrnoName>> = {
  [GrpcStatus.NOT_FOUND]: 'ENOENT',
  [GrpcStatus.ALREADY_EXISTS]: 'EEXIST',
  [GrpcStatus.PERMISSION_DENIED]: 'EACCES',
  [GrpcStatus.UNAUTHENTICATED]: 'EACCES',
  [GrpcStatus.INVALID_ARGUMENT]: 'EINVAL',
  [GrpcStatus.OUT_OF_RANGE]: 'EINVAL',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'EAGAIN',
  [GrpcStatus.UNAVAILABLE]: 'EHOSTDOWN',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'ETIMEDOUT',
  [GrpcStatus.CANCELLED]: 'EIO',
  [GrpcStatus.UNIMPLEMENTED]: 'ENOSYS',
  [GrpcStatus.FAILED_PRECONDITION]: 'EIO',
};

export const ERRNO_METADATA_KEY = 'gfs-errno';

export class GfsError extends Error {
  override readonly name = 'GfsError';
  constructor(
    readonly code: ErrnoName,
    message: string,
    readonly grpcCode: GrpcStatus = GRPC_STATUS_OF[code] ?? GrpcStatus.UNKNOWN,
  ) {
    super(`${code}: ${message}`);
  }

  /**
   * An error that is an ordinary answer (no such name, no such xattr), made without a stack
   * trace: capturing one cost ~4 us here, and `ls -l` or `tar -x` meet one per file.
   */
  static quiet(code: ErrnoName, message: string, grpcCode?: GrpcStatus): GfsError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new GfsError(code, message, grpcCode);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  /** The positive errno number (for FUSE, which wants it negated). */
  get errno(): number {
    return errnoNumber(this.code);
  }

  /** Errors worth trying again elsewhere or later: the server was unreachable or overloaded. */
  get retryable(): boolean {
    return (
      this.grpcCode === GrpcStatus.UNAVAILABLE ||
      this.grpcCode === GrpcStatus.DEADLINE_EXCEEDED ||
      this.grpcCode === GrpcStatus.RESOURCE_EXHAUSTED ||
      this.grpcCode === GrpcStatus.CANCELLED ||
      this.grpcCode === GrpcStatus.INTERNAL ||
      this.grpcCode === GrpcStatus.UNKNOWN
    );
  }

  /** Serialise for a gRPC callback / stream destroy on the server side. */
  toServiceError(): Partial<ServiceError> {
    const metadata = new Metadata();
    metadata.set(ERRNO_METADATA_KEY, this.code);
    return { code: this.grpcCode, details: this.message, metadata };
  }
}

export function isErrnoName(name: string): name is ErrnoName {
  return Object.prototype.hasOwnProperty.call(GRPC_STATUS_OF, name);
}

export function errnoNumber(code: string): number {
  const n = (osConstants.errno as Record<string, number>)[code];
  return n ?? osConstants.errno.EIO;
}

/** A GfsError's message without its leading errno name ("ENOENT: x" -> "x"), to put in another. */
export function withoutCode(message: string): string {
  return message.replace(/^[A-Z0-9]+: /, '');
}

/** A GfsError from a call's status: gRPC code, its details and the errno name the server sent. */
export function fromStatus(grpcCode: GrpcStatus, details: string | undefined, sentErrno: unknown, context?: string): GfsError {
  const code = (typeof sentErrno === 'string' && sentErrno in GRPC_STATUS_OF ? sentErrno : undefined) as ErrnoName | undefined;
  const text = withoutCode(details || 'unknown error');
  // Quiet: a stack taken here would only show the reply dispatch, not where the call was made.
  return GfsError.quiet(code ?? ERRNO_OF_STATUS[grpcCode] ?? 'EIO', context ? `${context}: ${text}` : text, grpcCode);
}

/** Rebuild a GfsError from whatever a gRPC call failed with. */
export function fromServiceError(err: unknown, context?: string): GfsError {
  if (err instanceof GfsError) return err;
  const e = err as Partial<ServiceError> & { message?: string };
  if (typeof e?.code === 'number') {
    return fromStatus(e.code as GrpcStatus, e.details ?? e.message, e.metadata?.get(ERRNO_METADATA_KEY)?.[0], context);
  }
  const message = e?.message ?? String(err);
  return new GfsError('EIO', context ? `${context}: ${message}` : message, GrpcStatus.INTERNAL);
}

// Short constructors keep throw sites readable: `throw enoent(path)`.
export const enoent = (what: string) => GfsError.quiet('ENOENT', `no such file or directory: ${what}`);
export const eexist = (what: string) => new GfsError('EEXIST', `already exists: ${what}`);
export const enotdir = (what: string) => new GfsError('ENOTDIR', `not a directory: ${what}`);
export const eisdir = (what: string) => new GfsError('EISDIR', `is a directory: ${what}`);
export const einval = (what: string) => new GfsError('EINVAL', what);
export const eio = (what: string) => new GfsError('EIO', what);
