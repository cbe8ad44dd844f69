// Daemons announce readiness with one line on stdout; `gfs up` and the tests wait for it.
// The format is part of the CLI contract: "gfs: <role> listening on HOST:PORT" and
// "gfs: mounted at <absolute dir>".
export const LISTENING_RE = /^gfs: (master|chunkserver) listening on (\S+)$/m;
export const MOUNTED_RE = /^gfs: mounted at (.+)$/m;

export function announceListening(role: 'master' | 'chunkserver', addr: string): void {
  process.stdout.write(`gfs: ${role} listening on ${addr}\n`);
}

export function announceMounted(dir: string): void {
  process.stdout.write(`gfs: mounted at ${dir}\n`);
}
