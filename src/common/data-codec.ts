// Encoders and decoders of the data channel's frame headers: messages of proto/gfs.proto
// (DataHello, DataOk, DataError and the chunk requests), through protobufjs, which
// @grpc/proto-loader builds on, so the wire types are the generated ones.
import protobuf from 'protobufjs';
import type {
  ApplyWriteRequest,
  ApplyWriteRequest__Output,
  DataError,
  DataError__Output,
  DataHello,
  DataHello__Output,
  DataOk,
  DataOk__Output,
  ReadRequest,
  ReadRequest__Output,
  SyncChunkRequest,
  SyncChunkRequest__Output,
  WriteRequest,
  WriteRequest__Output,
} from '../generated/gfs/index.js';
import { GfsError } from './errors.js';
import { PROTO_PATH } from './proto.js';

export interface Codec<In, Out> {
  encode(m: In): Uint8Array;
  /** Throws EINVAL on bytes that are not this message. */
  decode(b: Uint8Array): Out;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true };

let root: protobuf.Root | undefined;

function codec<In, Out>(name: string): Codec<In, Out> {
  let type: protobuf.Type | undefined;
  const t = () => (type ??= (root ??= protobuf.loadSync(PROTO_PATH)).lookupType(`gfs.${name}`));
  return {
    encode: (m) => t().encode(t().fromObject(m as Record<string, unknown>)).finish(),
    decode: (b) => {
      try {
        return t().toObject(t().decode(b), TO_OBJECT) as Out;
      } catch (err) {
        throw new GfsError('EINVAL', `data channel: bad ${name} header: ${(err as Error).message}`);
      }
    },
  };
}

export const helloCodec = codec<DataHello, DataHello__Output>('DataHello');
export const okCodec = codec<DataOk, DataOk__Output>('DataOk');
export const errorCodec = codec<DataError, DataError__Output>('DataError');
export const readCodec = codec<ReadRequest, ReadRequest__Output>('ReadRequest');
export const writeCodec = codec<WriteRequest, WriteRequest__Output>('WriteRequest');
export const applyCodec = codec<ApplyWriteRequest, ApplyWriteRequest__Output>('ApplyWriteRequest');
export const syncCodec = codec<SyncChunkRequest, SyncChunkRequest__Output>('SyncChunkRequest');
