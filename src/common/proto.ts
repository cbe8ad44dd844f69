// Loads proto/gfs.proto once per process. Field names are camelCase and 64-bit integers are
// JS numbers, matching the generated types in src/generated (scripts/gen-proto.sh).
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/gfs.js';

export const PROTO_PATH = fileURLToPath(new URL('../../proto/gfs.proto', import.meta.url));

let loaded: ProtoGrpcType | undefined;

export function proto(): ProtoGrpcType {
  if (!loaded) {
    const def = protoLoader.loadSync(PROTO_PATH, {
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    loaded = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  }
  return loaded;
}

export type * as pb from "../generated/gfs/index.js";
