// Writes data-channel frames (data-frame.ts) to a socket. The frames written in one turn of
// the event loop leave together in one writev: thousands of small reads in flight otherwise
// cost a write syscall each, which was a quarter of the client's CPU time.
import type { Writable } from 'node:stream';
import { framePrefix, type Kind } from './data-frame.js';

export class FrameWriter {
  private held = false;

  constructor(private readonly socket: Writable) {}

  /** `sent`: called once the payload has been handed to the kernel (or the socket is gone). */
  write(kind: Kind, id: number, header: Uint8Array, payload?: Uint8Array, sent?: () => void): void {
    if (!this.held) {
      this.held = true;
      this.socket.cork();
      // A tick queued from a promise job runs once the job queue is empty, so every frame that
      // the replies of one socket read set off joins this batch.
      process.nextTick(this.release);
    }
    this.socket.write(framePrefix(kind, id, header, payload?.length ?? 0));
    if (payload && payload.length > 0) this.socket.write(payload, sent);
    else sent?.();
  }

  private readonly release = (): void => {
    this.held = false;
    this.socket.uncork();
  };
}
