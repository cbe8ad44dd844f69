// Splits a byte range of a file into chunk pieces: never crossing a chunk boundary, never
// larger than maxPiece. Pieces are the unit of parallel work.
export interface Piece {
  index: number;      // chunk index
  chunkOffset: number;
  length: number;
  at: number;         // offset of the piece within the caller's buffer
}

export function splitRange(offset: number, length: number, chunkSize: number, maxPiece: number): Piece[] {
  const pieces: Piece[] = [];
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const index = Math.floor(pos / chunkSize);
    const chunkOffset = pos - index * chunkSize;
    const len = Math.min(end - pos, chunkSize - chunkOffset, maxPiece);
    pieces.push({ index, chunkOffset, length: len, at: pos - offset });
    pos += len;
  }
  return pieces;
}

/**
 * The range as its one piece, or undefined when it crosses a chunk boundary or is longer than
 * maxPiece (what splitRange would give as a single piece, without the array).
 */
export function singlePiece(offset: number, length: number, chunkSize: number, maxPiece: number): Piece | undefined {
  const index = Math.floor(offset / chunkSize);
  const chunkOffset = offset - index * chunkSize;
  return chunkOffset + length <= chunkSize && length <= maxPiece ? { index, chunkOffset, length, at: 0 } : undefined;
}
