// `gfs status`: what the master knows about the cluster, as a table or JSON.
import { GfsClient } from '../client/client.js';

export async function runStatus(master: string, json: boolean): Promise<void> {
  const client = new GfsClient({ master, masterRetryWindowMs: 5_000 });
  try {
    const s = await client.clusterStatus();
    if (json) {
      process.stdout.write(JSON.stringify({ master, ...s }, null, 2) + '\n');
      return;
    }
    const gib = (n: number) => (n / 2 ** 30).toFixed(1);
    const lines = [
      `master      ${master}`,
      `files       ${s.files}    directories ${s.directories}    chunks ${s.chunks} (chunk size ${s.chunkSize / 2 ** 20} MiB)`,
      `replication under-replicated ${s.underReplicated}    missing ${s.missing}    repair backlog ${s.repairBacklog}`,
      `repair      in flight ${s.repair?.inFlight ?? 0} (max ${s.repair?.maxClones ?? '-'}, ${((s.repair?.cloneBytesPerSec ?? 0) / 2 ** 20).toFixed(0)} MiB/s each)    cloned ${s.repair?.clonesSucceeded ?? 0} (${((s.repair?.bytesCloned ?? 0) / 2 ** 20).toFixed(0)} MiB)    failed ${s.repair?.clonesFailed ?? 0}    extra deleted ${s.repair?.overReplicatedDeleted ?? 0}    stale ${s.repair?.staleDeleted ?? 0}    corrupt ${s.repair?.corruptReported ?? 0}    rebalanced ${s.repair?.rebalanceMoves ?? 0}`,
      '',
      'server      address                 state     used/capacity GiB   load  chunks  last heartbeat',
    ];
    for (const v of s.servers) {
      const ago = v.lastHeartbeatMs ? `${((Date.now() - v.lastHeartbeatMs) / 1000).toFixed(1)} s ago` : '-';
      lines.push(
        `${v.serverId.padEnd(11)} ${v.addr.padEnd(23)} ${v.state.padEnd(9)} ${`${gib(v.used)}/${gib(v.capacity)}`.padEnd(19)} ${String(v.load).padEnd(5)} ${String(v.chunks).padEnd(7)} ${ago}`,
      );
    }
    if (s.recentEvents.length) {
      lines.push('', 'recent events');
      for (const e of s.recentEvents.slice(-10)) {
        const what = e.kind === 'registered' ? 'registered' : e.kind === 'address' ? `address ${e.from} -> ${e.to}` : `${e.from} -> ${e.to}`;
        lines.push(`  ${new Date(Number(e.timeMs)).toISOString()}  ${e.serverId.padEnd(16)} ${e.addr.padEnd(22)} ${what}`);
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await client.close();
  }
}
