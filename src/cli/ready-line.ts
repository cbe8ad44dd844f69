// Daemons announce readiness with one line on stdout; `gfs up` and the tests wait for it.
// The format is part of the CLI contract: "gfs: <role> listening on HOST:PORT" and
// "gfs: mounted at <absolute dir>".
export const LISTENING_RE = /^gfs: (master|chunkserver) listening on (\S+)$/m;
export const MOUNTED_RE = /^gfs: mounted at (.+)$/m;

export function announceListening(role: 'master' | 'chunkserver', addr: string): void {
  process.stdout.write(`gfs: ${role} listening on ${addr}\n`);
}

/**
 * "gfs: <role> http on http://HOST:PORT" (status page, /metrics, /healthz), printed just before
 * the role's ready line, so whoever waits for the ready line has it too.
 */
export const HTTP_RE = /^gfs: (master|chunkserver|mount) http on (\S+)$/m;

export function announceHttp(role: 'master' | 'chunkserver' | 'mount', url: string): void {
  process.stdout.write(`gfs: ${role} http on ${url}\n`);
}

export function announceMounted(dir: string): void {
  process.stdout.write(`gfs: mounted at ${dir}\n`);
}
