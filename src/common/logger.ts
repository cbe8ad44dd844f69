// Structured logging. JSON lines by default (daemons write them to files); pretty only when a
// person is watching a terminal. Fields, not prose: { handle, server, path }.
import { mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  name: string;
  level?: string;
  /** File to append JSON lines to; stderr when absent. */
  file?: string;
  pretty?: boolean;
}

export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level ?? process.env.GFS_LOG_LEVEL ?? 'info';
  if (opts.file) {
    // Opened here, synchronously: a stream still opening when the process exits (a bad flag
    // found right after start-up) makes pino's exit flush throw over the real error.
    mkdirSync(dirname(opts.file), { recursive: true });
    const fd = openSync(opts.file, 'a');
    return pino({ name: opts.name, level }, pino.destination({ dest: fd, sync: false }));
  }
  const pretty = opts.pretty ?? (process.stderr.isTTY && !process.env.GFS_LOG_JSON);
  if (pretty) {
    return pino({
      name: opts.name,
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino({ name: opts.name, level }, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything (library users who did not ask for logs). */
export const silentLogger: Logger = pino({ level: 'silent' });
