/**
 * Which of a user's writes still wait for their commit before they are
 * relayed. A Yjs update is relayed once applied, before its commit is
 * durable, unless it raised a conflict; every other write (a change
 * record, a resolution, an operator's) is relayed after its commit. While
 * one of a user's writes waits, the user's later updates wait behind it, so
 * that the user's devices get relays in the order the writes were applied.
 */
export class LateRelays {
  private readonly waiting = new Map<string, number>()

  /** Whether a write of `userId` is applied and waits for its commit to be relayed. */
  pending(userId: string): boolean {
    return this.waiting.has(userId)
  }

  /**
   * Counts a write of `userId` as waiting from now (call it in the turn the
   * write is applied) until `publish` has settled, published or failed.
   */
  async hold<T>(userId: string, publish: () => Promise<T>): Promise<T> {
    this.waiting.set(userId, (this.waiting.get(userId) ?? 0) + 1)
    try {
      return await publish()
    } finally {
      const left = (this.waiting.get(userId) ?? 1) - 1
      if (left > 0) this.waiting.set(userId, left)
      else this.waiting.delete(userId)
    }
  }
}
