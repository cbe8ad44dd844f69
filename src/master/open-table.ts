// Open counts per (inode, client). An unlinked inode stays (reachable by ino, chunks kept)
// while anyone has it open. Not persistent: clients re-open after a master restart.

export class OpenTable {
  private readonly opens = new Map<number, Map<string, number>>();

  open(ino: number, clientId: string): void {
    let perClient = this.opens.get(ino);
    if (!perClient) this.opens.set(ino, (perClient = new Map()));
    perClient.set(clientId, (perClient.get(clientId) ?? 0) + 1);
  }

  /** Returns true when this was the last open of the inode by anyone. */
  release(ino: number, clientId: string): boolean {
    const perClient = this.opens.get(ino);
    const n = perClient?.get(clientId);
    if (!perClient || n === undefined) return !this.isOpen(ino);
    if (n <= 1) perClient.delete(clientId);
    else perClient.set(clientId, n - 1);
    if (perClient.size === 0) this.opens.delete(ino);
    return !this.isOpen(ino);
  }

  /** Does `clientId` still hold `ino` open? */
  isOpenBy(ino: number, clientId: string): boolean {
    return this.opens.get(ino)?.has(clientId) ?? false;
  }

  isOpen(ino: number): boolean {
    return this.opens.has(ino);
  }

  /** Forgets an inode (it was deleted). */
  forget(ino: number): void {
    this.opens.delete(ino);
  }
}
