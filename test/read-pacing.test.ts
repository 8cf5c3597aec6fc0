/**
 * Read pacing (websockets/read-pacer.ts, issue 15): a connection delivers at
 * most a slice of packets per turn of the event loop; past it, its WebSocket
 * is paused until the turn's check phase, and the rest of its burst waits in
 * the kernel's buffer while other connections are read.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { paceRead } from '../src/websockets/read-pacer.js'
import type { SyncSocket } from '../src/websockets/types.js'
import { nextTurn, type Reply } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { NO_RATE_LIMITS } from './helpers/server.js'


/** A socket whose transport is a WebSocket that records its pauses and resumes. */
function fakeSocket(transport = 'websocket') {
  const ws = {
    isPaused: false,
    calls: [] as string[],
    pause() {
      this.isPaused = true
      this.calls.push('pause')
    },
    resume() {
      this.isPaused = false
      this.calls.push('resume')
    },
  }
  const socket = { conn: { transport: { name: transport, socket: ws } } } as unknown as SyncSocket
  return { socket, ws }
}

describe('read pacing', () => {
  it('pauses a connection past its packets for the turn and resumes it at the end of the turn; others are not touched', async () => {
    const busy = fakeSocket()
    const quiet = fakeSocket()
    for (let i = 0; i < 4; i++) paceRead(busy.socket, 4)
    paceRead(quiet.socket, 4)
    expect(busy.ws.calls).toEqual([])
    paceRead(busy.socket, 4) // the fifth: paused
    paceRead(busy.socket, 4) // the rest of the chunk being parsed: already paused
    expect(busy.ws.calls).toEqual(['pause'])
    await nextTurn()
    expect(busy.ws.calls).toEqual(['pause', 'resume'])
    expect(quiet.ws.calls).toEqual([])
    // A new turn counts afresh: 4 pass, a fifth pauses again, and the turn's end resumes it.
    for (let i = 0; i < 4; i++) paceRead(busy.socket, 4)
    expect(busy.ws.calls).toEqual(['pause', 'resume'])
    paceRead(busy.socket, 4)
    await nextTurn()
    expect(busy.ws.calls).toEqual(['pause', 'resume', 'pause', 'resume'])
  })

  it('leaves long-polling connections alone', async () => {
    const polling = fakeSocket('polling')
    for (let i = 0; i < 10; i++) paceRead(polling.socket, 4)
    await nextTurn()
    expect(polling.ws.calls).toEqual([])
  })

  describe('on a real server', () => {
    const t = useServer()
    afterEach(() => {
      vi.restoreAllMocks()
    })

    it('a device that writes 2,000 events at once is read a slice per turn, and every event is answered', async () => {
      await t.start(undefined, NO_RATE_LIMITS)
      const web = await t.jsonDevice('alice', 'web')
      const serverSide = t.server.io.sockets.sockets.get(web.socket.id ?? '')
      const ws = (serverSide?.conn.transport as unknown as { socket: { pause(): void } }).socket
      const pause = vi.spyOn(ws, 'pause')
      const replies = await Promise.all(
        Array.from({ length: 2000 }, () => web.socket.emitWithAck('sync:status', { deviceId: 'web' }) as Promise<Reply>),
      )
      expect(replies.every((r) => r.ok)).toBe(true)
      expect(pause).toHaveBeenCalled()
    })
  })
})
