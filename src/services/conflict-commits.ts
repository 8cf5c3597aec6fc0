/**
 * The commits of a user's Yjs updates that raised a conflict and are not
 * yet settled. A Yjs sync waits for them before it diffs the document from
 * memory: a device that got a conflict's write-back before it was stored,
 * and resent it with the update after the commit failed, would make the
 * update no longer read as a conflict, and the author's value would be lost
 * without a record. Other unstored writes are harmless to hand out (their
 * resend after a failed commit stores them: docs/architecture.md §2.6-2.7),
 * so a user's steady writes never hold a sync; a conflict on every write is
 * what `MAX_ROUNDS` bounds.
 */
export class ConflictCommits {
  private readonly pending = new Map<string, Set<Promise<unknown>>>()

  /** Tracks `durable`, the commit of an update of `userId` that raised a conflict, until it settles. */
  track(userId: string, durable: Promise<unknown>): void {
    let commits = this.pending.get(userId)
    if (!commits) this.pending.set(userId, (commits = new Set()))
    commits.add(durable)
    const settled = () => {
      commits.delete(durable)
      if (commits.size === 0) this.pending.delete(userId)
    }
    durable.then(settled, settled)
  }

  /**
   * Resolves once no such commit of `userId` is pending: those of now, and
   * those made while it waits, for up to `MAX_ROUNDS` rounds; false if some
   * are still pending after them.
   */
  async settled(userId: string): Promise<boolean> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const commits = this.pending.get(userId)
      if (!commits) return true
      await Promise.allSettled([...commits])
    }
    return !this.pending.has(userId)
  }
}

/** Rounds of waiting a sync gives a user's conflicts before it is refused (`UNAVAILABLE`, retry). */
const MAX_ROUNDS = 8
