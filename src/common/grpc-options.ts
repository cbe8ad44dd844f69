// Channel and server options shared by every gfs process. Large HTTP/2 flow-control windows
// are what lets grpc-js streams carry data at >1 GB/s on loopback (shared/bench/LIMITS.md).
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { ChannelOptions } from '@grpc/grpc-js';
import { MAX_MESSAGE_BYTES, MiB } from './limits.js';

export const FLOW_CONTROL_WINDOW = 16 * MiB;
const KEEPALIVE_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;
/** Concurrent streams one peer may hold open on a server connection. */
export const MAX_CONCURRENT_STREAMS = 1024;

export const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES + MiB,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES + MiB,
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
  'grpc.keepalive_time_ms': KEEPALIVE_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.enable_retries': 0,
  'grpc.enable_channelz': 0,
  // Fail fast while a peer is down, so our own retry logic (not grpc's reconnect wait) decides.
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
};

export const SERVER_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES + MiB,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES + MiB,
  'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  'grpc.enable_channelz': 0,
};

let patched = false;

/**
 * grpc-js has no server option for the HTTP/2 receive windows, so the stream and connection
 * windows are raised where Node creates the session. Done once per process, before binding.
 */
export function enlargeServerWindows(): void {
  if (patched) return;
  patched = true;
  const original = http2.createServer;
  const patchedCreate = ((options: http2.ServerOptions, ...rest: unknown[]) => {
    const settings = { ...(options?.settings ?? {}), initialWindowSize: FLOW_CONTROL_WINDOW };
    const server = (original as (...a: unknown[]) => http2.Http2Server)({ ...options, settings }, ...rest);
    // Replies are small frames written one after another (a session stream answers many calls):
    // with Nagle's algorithm on, the second waits for the peer's delayed ACK of the first.
    server.on('connection', (socket: Socket) => socket.setNoDelay(true));
    server.on('session', (session: http2.ServerHttp2Session) => {
      session.once('localSettings', () => {
        try {
          session.setLocalWindowSize(FLOW_CONTROL_WINDOW);
        } catch {
          // The session closed before its settings were acknowledged; nothing to enlarge.
        }
      });
    });
    return server;
  }) as typeof http2.createServer;
  (http2 as { createServer: typeof http2.createServer }).createServer = patchedCreate;
}
