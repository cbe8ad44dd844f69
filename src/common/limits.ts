// Protocol-wide sizes and bounds. Every process agrees on these; change them only together.
export const MiB = 1024 * 1024;
export const KiB = 1024;

/** Default chunk size (a master flag can lower it, e.g. for tests). */
export const DEFAULT_CHUNK_SIZE = 64 * MiB;
/**
 * Checksum granularity on chunkservers: a page, so a 4 KiB read reads and checksums 4 KiB (at
 * 64 KiB, as GFS had it, small random reads cost a chunkserver 16 times the bytes).
 */
export const CHECKSUM_BLOCK = 4 * KiB;
/** Chunk sizes are whole multiples of this (and so of every checksum block size in use). */
export const CHUNK_SIZE_UNIT = 64 * KiB;
export const NAME_MAX = 255;
export const PATH_MAX = 4096;
export const XATTR_NAME_MAX = 255;
export const XATTR_VALUE_MAX = 64 * KiB;
export const SYMLINK_MAX = PATH_MAX;
/** Largest single gRPC message any gfs process sends or accepts. */
export const MAX_MESSAGE_BYTES = 16 * MiB;
/** Data moves in stream messages of this size (reads and pushes). */
export const STREAM_PIECE = 1024 * KiB;
/** Writes up to this size travel inline in the Write RPC instead of a separate push. */
export const INLINE_WRITE_MAX = 256 * KiB;
/** Largest file: 2^50 bytes keeps offsets exact in JS numbers with room to spare. */
export const MAX_FILE_SIZE = 2 ** 50;
/** A chunk handle or inode above this cannot be ours (see proto: longs as numbers). */
export const MAX_ID = Number.MAX_SAFE_INTEGER;
/** Reads coalesced into one ReadBatch call at most, and their total bytes. */
export const READ_BATCH_MAX = 128;
export const READ_BATCH_BYTES = 8 * MiB;
