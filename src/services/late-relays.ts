/**
 * Which of a user's writes still wait for their commit before they are
 * relayed, and the order they are published in. A Yjs update is relayed
 * once applied, before its commit is durable, unless it raised a conflict;
 * every other write (a change record, a resolution, an operator's) is
 * published after its commit. While one of a user's writes waits, the user's
 * later updates wait too, and the waiting writes are published one after
 * another in the order they were applied (their commits settle in that order,
 * but the paths from a settled commit to its publish differ in length), so
 * that the user's devices get relays and change records in apply order.
 */
export class LateRelays {
  /** Per user: settles once the user's last waiting write has been published (or has failed). */
  private readonly tails = new Map<string, Promise<void>>()

  /** Whether a write of `userId` is applied and waits for its commit to be published. */
  pending(userId: string): boolean {
    return this.tails.has(userId)
  }

  /**
   * Publishes `work`'s result with `publish` once it has settled and the
   * user's earlier waiting writes are published. Call it in the turn the
   * write is applied. Resolves with the result; rejects as `work` does
   * (nothing is published then).
   */
  after<T>(userId: string, work: Promise<T>, publish: (result: T) => void): Promise<T> {
    work.catch(() => undefined) // settled later, in turn: not an unhandled rejection meanwhile
    const previous = this.tails.get(userId)
    const published = (previous ? previous.then(() => work) : work).then((result) => {
      publish(result)
      return result
    })
    const tail = published.then(
      () => undefined,
      () => undefined,
    )
    this.tails.set(userId, tail)
    void tail.then(() => {
      if (this.tails.get(userId) === tail) this.tails.delete(userId)
    })
    return published
  }
}
