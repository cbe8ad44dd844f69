// Addresses of other chunkservers named in a request (push chain, write secondaries): checked
// before any connection is made to them.
import { GfsError } from '../common/errors.js';
import { parseAddr } from '../common/rpc.js';

/** Most servers a push chain or a write's secondaries may name. */
export const PEERS_MAX = 16;

export function checkPeers(what: string, addrs: readonly string[], self: string): string[] {
  if (addrs.length > PEERS_MAX) throw new GfsError('EINVAL', `${what}: ${addrs.length} servers, at most ${PEERS_MAX}`);
  const seen = new Set<string>();
  for (const a of addrs) {
    parseAddr(a);
    if (a === self) throw new GfsError('EINVAL', `${what} names this server (${a}) again`);
    if (seen.has(a)) throw new GfsError('EINVAL', `${what} names ${a} twice`);
    seen.add(a);
  }
  return [...addrs];
}
