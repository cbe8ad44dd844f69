// PushData: receive a client stream into a bounded buffer while forwarding every message, as
// it arrives, to the next server of the chain (pipelining, with backpressure both ways). The
// reply goes out only when this server holds everything and the rest of the chain said OK.
import * as grpc from '@grpc/grpc-js';
import type { TokenVerifier } from '../common/chunk-token.js';
import { GfsError, fromServiceError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { countBytes, serverRpcStarted } from '../common/metrics.js';
import { requestFields, toServiceError, type ClientPool } from '../common/rpc.js';
import type { ChunkServerClient } from '../generated/gfs/ChunkServer.js';
import type { PushMessage, PushMessage__Output, PushReply } from '../generated/gfs/index.js';
import type { Admission } from './admission.js';
import { checkPeers } from './peers.js';
import { PushBuffers } from './push-buffers.js';
import { checkHandle, checkUint } from './validate.js';

/** Bound on a whole forwarded push, from its first message to the downstream reply. */
export const PUSH_FORWARD_TIMEOUT_MS = 60_000;

export interface PushDeps {
  buffers: PushBuffers;
  peers: ClientPool<ChunkServerClient>;
  admission: Admission;
  self: () => string;
  log: Logger;
  /** Checks the write token of the first message; undefined = tokens off. */
  tokens?: TokenVerifier;
}

export function pushDataHandler(deps: PushDeps): grpc.handleClientStreamingCall<PushMessage__Output, PushReply> {
  const { buffers, log } = deps;
  return (call, callback) => {
    const leave = deps.admission.enter();
    const done = serverRpcStarted('PushData');
    const t0 = performance.now();
    const peer = call.getPeer();
    let dataId: string | undefined;
    let generation = 0;
    let received = 0;
    let next: string | undefined;
    let downstream: grpc.ClientWritableStream<PushMessage> | undefined;
    let downstreamReply: Promise<number> | undefined;
    let finished = false;

    const finish = (err: unknown, reply?: PushReply) => {
      if (finished) return;
      finished = true;
      leave();
      done(!!err);
      if (err) {
        if (dataId !== undefined) buffers.abort(dataId, generation);
        downstream?.cancel();
        call.resume(); // drain whatever is still arriving; it is ignored
        log.debug({ peer, dataId, next, err: (err as Error)?.message }, 'push failed');
        callback(toServiceError(log, 'PushData', err, { ...requestFields(call, t0), dataId, received, next }) as grpc.ServiceError);
      } else {
        callback(null, reply);
      }
    };

    const open = (msg: PushMessage__Output, chain: string[]) => {
      next = chain[0]!;
      const client = deps.peers.get(next);
      const target = next;
      downstreamReply = new Promise<number>((resolve, reject) => {
        downstream = client.PushData(new grpc.Metadata(), { deadline: Date.now() + PUSH_FORWARD_TIMEOUT_MS }, (err, reply) => {
          if (err) reject(fromServiceError(err, `forwarding push ${dataId} to ${target}`));
          else resolve(reply?.received ?? 0);
        });
      });
      // A downstream failure fails this push at once, even mid-stream.
      downstreamReply.catch((err) => finish(err));
      downstream!.on('error', () => undefined); // reported through the callback above
      return { dataId: msg.dataId, chain: chain.slice(1), total: msg.total, handle: msg.handle, token: msg.token };
    };

    call.on('data', (msg: PushMessage__Output) => {
      if (finished) return;
      try {
        let out: PushMessage = { data: msg.data };
        if (dataId === undefined) {
          const id = PushBuffers.checkId(msg.dataId);
          const chain = checkPeers('push chain', msg.chain ?? [], deps.self());
          // The first message names the chunk and carries a write token for it; the buffer is
          // bound to that chunk (a Write of it to another chunk is refused, service.ts).
          let handle = 0;
          if (deps.tokens) {
            handle = checkHandle(msg.handle);
            deps.tokens.check(msg.token, 'write', handle);
          }
          generation = buffers.begin(id, checkUint('total', msg.total), handle);
          dataId = id;
          if (chain.length > 0) out = { ...open(msg, chain), data: msg.data };
        }
        buffers.append(dataId, generation, msg.data);
        countBytes('pushed', msg.data.length);
        received += msg.data.length;
        if (downstream && !downstream.write(out)) {
          call.pause();
          downstream.once('drain', () => call.resume());
        }
      } catch (err) {
        finish(err);
      }
    });

    call.on('end', () => {
      if (finished) return;
      if (dataId === undefined) return finish(new GfsError('EINVAL', 'empty push: no message with a data id'));
      try {
        buffers.complete(dataId, generation);
      } catch (err) {
        return finish(err);
      }
      if (!downstream || !downstreamReply) return finish(null, { received });
      downstream.end();
      downstreamReply.then(
        (got) =>
          got === received
            ? finish(null, { received })
            : finish(new GfsError('EIO', `push ${dataId}: ${next} received ${got} bytes, this server ${received}`)),
        (err) => finish(err),
      );
    });

    call.on('error', (err) => finish(err));
    call.on('cancelled', () => finish(new GfsError('EIO', `push ${dataId ?? ''} cancelled by ${peer}`)));
  };
}
