/**
 * New ids (UUID v4): the platform's `crypto.randomUUID()` (Node, and browsers
 * in a secure context), else lib0's. lib0's draws 31 random numbers one by
 * one: about 150–200 µs an id in Node 20, against 0.2 µs, and it was most of
 * the CPU of `create()` (scripts/bench/sdk-cost.ts).
 */
import { uuidv4 } from 'lib0/random'

const platform = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto

export const newId = (): string => (typeof platform?.randomUUID === 'function' ? platform.randomUUID() : uuidv4())
