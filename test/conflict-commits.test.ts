/**
 * The commits of a user's conflicting updates that a Yjs sync waits for
 * (src/services/conflict-commits.ts): it waits for those pending and those
 * made meanwhile, for a bounded number of rounds, and never for other users'.
 */
import { describe, expect, it } from 'vitest'
import { ConflictCommits } from '../src/services/conflict-commits.js'

/** A commit settled by hand. */
function commit(): { promise: Promise<void>; settle: () => void; fail: () => void } {
  let settle!: () => void
  let fail!: () => void
  const promise = new Promise<void>((resolve, reject) => ((settle = resolve), (fail = () => reject(new Error('write failed')))))
  promise.catch(() => undefined)
  return { promise, settle, fail }
}

describe('conflict commits', () => {
  it("waits for the user's pending commits, failed ones too, and for those made meanwhile; not for another user's", async () => {
    const commits = new ConflictCommits()
    expect(await commits.settled('alice')).toBe(true)
    const first = commit()
    const other = commit()
    commits.track('alice', first.promise)
    commits.track('bob', other.promise)
    let done: boolean | undefined
    void commits.settled('alice').then((ok) => (done = ok))
    const second = commit()
    commits.track('alice', second.promise)
    first.fail()
    await first.promise.catch(() => undefined)
    await Promise.resolve()
    expect(done).toBeUndefined()
    second.settle()
    await second.promise
    await new Promise((resolve) => setImmediate(resolve))
    expect(done).toBe(true)
    other.settle()
  })

  it('gives up after a bounded number of rounds while new ones keep coming', async () => {
    const commits = new ConflictCommits()
    let current = commit()
    commits.track('alice', current.promise)
    let done: boolean | undefined
    void commits.settled('alice').then((ok) => (done = ok))
    for (let i = 0; i < 20 && done === undefined; i++) {
      const next = commit()
      commits.track('alice', next.promise)
      current.settle()
      await new Promise((resolve) => setImmediate(resolve))
      current = next
    }
    expect(done).toBe(false)
    current.settle()
  })
})
