/**
 * A JSON device that keeps its own writes, as an app would. The server does not
 * echo a device's change back to it (only the ack, with the entity's new
 * version), so the device folds its change into its state once it holds the
 * version before it (ack version minus one). Fields the server kept as
 * conflicts are left out. A delete's `deletedAt` is set by the server and is
 * unknown here until a record of the entity brings it.
 */
import type { SyncChange, SyncConflict } from '../../src/types/sync.js'
import { sidesOf } from './conflicts.js'
import { JsonDevice, type Reply } from './json-device.js'

type Operation = 'create' | 'update' | 'delete'
type Ack = Extract<Reply, { ok: true }>

interface OwnChange {
  operation: Operation
  data: Record<string, unknown>
}

export class TrackingJsonDevice extends JsonDevice {
  /** Own acknowledged changes not folded in yet: by entity key, by the version they made. */
  private readonly own = new Map<string, Map<number, OwnChange>>()

  static async open(url: string, token: string, deviceId: string): Promise<TrackingJsonDevice> {
    const device = new TrackingJsonDevice(url, token, deviceId)
    await device.open()
    await device.sync()
    return device
  }

  override apply(change: SyncChange): void {
    super.apply(change)
    this.fold(`${change.entityType}:${change.entityId}`)
  }

  /**
   * Sends a change from the version this device holds of the entity (or from
   * `version`), throws unless acknowledged, and keeps it.
   */
  async change(
    operation: Operation,
    change: { entityType: string; entityId: string; data?: Record<string, unknown>; version?: number },
  ): Promise<Ack> {
    const version = change.version ?? this.entity(change.entityType, change.entityId)?.version ?? 0
    const ack = await this.write(operation, { ...change, version })
    const refused = new Set(this.conflictsOf(ack).map((c) => c.field))
    const data = Object.fromEntries(Object.entries(change.data ?? {}).filter(([field]) => !refused.has(field)))
    this.keep(`${change.entityType}:${change.entityId}`, ack.version as number, { operation, data })
    return ack
  }

  /** Resolves a conflict and keeps the value it writes. */
  async resolve(conflict: SyncConflict, winningVersion: 'server' | 'client' | 'merged', merged?: unknown): Promise<Ack> {
    const payload = {
      conflictId: conflict.id,
      winningVersion,
      ...(winningVersion === 'merged' ? { mergedData: { [conflict.field]: merged } } : {}),
    }
    const reply = (await this.socket.timeout(5000).emitWithAck('sync:conflict', payload)) as Reply
    if (!reply.ok) throw new Error(`resolution refused: ${JSON.stringify(reply)}`)
    const { server, client } = sidesOf(conflict)
    const value = { server: server.value, client: client.value, merged }[winningVersion]
    this.keep(`${conflict.entityType}:${conflict.entityId}`, reply.version as number, {
      operation: 'update',
      data: { [conflict.field]: value },
    })
    return reply
  }

  /** The conflicts an ack names; their `sync:conflict` events reach this socket before the ack. */
  conflictsOf(ack: Ack): SyncConflict[] {
    const ids = new Set((ack.conflicts as string[] | undefined) ?? [])
    return this.conflicts.filter((c) => ids.has(c.id) && !c.resolved)
  }

  private keep(key: string, version: number, change: OwnChange): void {
    let pending = this.own.get(key)
    if (!pending) this.own.set(key, (pending = new Map()))
    pending.set(version, change)
    this.fold(key)
  }

  private fold(key: string): void {
    const pending = this.own.get(key)
    if (!pending) return
    for (;;) {
      const state = this.entities.get(key)
      const version = state?.version ?? 0
      for (const v of pending.keys()) if (v <= version) pending.delete(v)
      const next = pending.get(version + 1)
      if (!next) return
      pending.delete(version + 1)
      const data: Record<string, unknown> = { ...state?.data, ...next.data }
      let deleted = state?.deleted ?? false
      if (next.operation === 'delete') {
        deleted = true
        data._deleted = true
        delete data.deletedAt // the server's clock: unknown until a record brings it
      } else if (next.operation === 'create' && deleted) {
        deleted = false
        data._deleted = false
      }
      this.entities.set(key, { version: version + 1, timestamp: state?.timestamp ?? 0, deleted, data })
    }
  }
}
