/**
 * The conflicts panel: the user's open conflicts (a `manual` field written
 * concurrently, e.g. a clip's content edited on two devices while one was
 * offline; docs/protocol.md "Conflicts"), each with the two versions side by
 * side and the three ways out: keep the server's value (the one in the
 * document now), keep the client's (refused by the server when that device's
 * value was not kept: `collected`), or write a merged value edited here.
 *
 * It follows the SDK's `conflict` events (raised or resolved, by any device)
 * and `client.conflicts`, and is hidden while there are none.
 */
import type { Conflict, ConflictVersion, Json, SyncClient } from '@superclip/sync-client'
import { SyncClientError } from '@superclip/sync-client'
import { batched, button, h, KeyedList, Listeners } from './dom.js'

export interface ConflictElements {
  panel: HTMLElement
  list: HTMLUListElement
}

/** Fields whose value is an id or null: an empty merged value is null. */
const ID_FIELDS = new Set(['folderId', 'parentId'])

/** A value as text in the panel and the merge field: strings as they are, anything else as JSON. */
const asText = (value: Json | undefined): string => (typeof value === 'string' ? value : JSON.stringify(value, null, 2))

const time = (ms: number): string => new Date(ms).toLocaleString()

export class ConflictsPanel {
  private readonly rows: KeyedList<Conflict>
  /** Conflicts whose merge field is open: not redrawn under the user's typing. */
  private readonly merging = new Set<string>()
  private readonly listeners = new Listeners()

  constructor(
    private readonly client: SyncClient,
    private readonly ui: ConflictElements,
    private readonly say: (message: string, kind?: 'info' | 'error') => void,
  ) {
    this.rows = new KeyedList(ui.list, (c) => this.row(c), (c) => `${c.id} ${this.entityLabel(c)}`)
    const render = batched(() => this.render())
    // New and resolved conflicts, and entity changes (a clip's title names its conflict).
    this.listeners.client(client, 'conflict', render)
    this.listeners.client(client, 'change', render)
    this.render()
  }

  dispose(): void {
    this.listeners.off()
    this.rows.clear()
  }

  private render(): void {
    const open = this.client.conflicts
    for (const id of this.merging) if (!open.some((c) => c.id === id)) this.merging.delete(id)
    this.rows.update(open, (id) => this.merging.has(id))
    this.ui.panel.hidden = open.length === 0
  }

  /** `clip “Title”`, `folder “Work”`, or the type and id when the entity has no name here. */
  private entityLabel(c: Conflict): string {
    let name: string | undefined
    if (c.entityType === 'clip') {
      const clip = this.client.clips.get(c.entityId, { includeDeleted: true })
      name = clip?.title || clip?.content?.slice(0, 40)
    } else if (c.entityType === 'folder') {
      name = this.client.folders.get(c.entityId, { includeDeleted: true })?.name
    }
    return name ? `${c.entityType} “${name}”` : `${c.entityType} ${c.entityId}`
  }

  private device(deviceId: string): string {
    return deviceId === this.client.deviceId ? `${deviceId} (this device)` : deviceId
  }

  private side(which: 'server' | 'client', label: string, v: ConflictVersion): HTMLElement {
    return h(
      'div',
      { className: `version ${which}`, testid: `conflict-${which}` },
      h('h3', { textContent: label }),
      v.collected
        ? h('p', { className: 'collected', textContent: 'value not kept', testid: `conflict-${which}-value` })
        : h('pre', { textContent: asText(v.value), testid: `conflict-${which}-value` }),
      h('p', { className: 'hint' }, 'from ', h('span', { textContent: this.device(v.deviceId), testid: `conflict-${which}-device` }), ` · ${time(v.timestamp)}`),
    )
  }

  private row(c: Conflict): HTMLLIElement {
    const merged = h('textarea', { rows: 3, testid: 'conflict-merged-value', ariaLabel: 'Merged value' })
    const mergeForm = h('form', { className: 'merge', hidden: true }, merged)
    const keepServer = button('Keep server', 'conflict-keep-server', () => void this.resolve(c, 'server'))
    const keepClient = button('Keep client', 'conflict-keep-client', () => void this.resolve(c, 'client'), {
      disabled: c.clientVersion.collected === true,
      title: c.clientVersion.collected ? "That device's value was not kept: it cannot be restored" : '',
    })
    const merge = button('Merge…', 'conflict-merge', () => {
      this.merging.add(c.id)
      merged.value = asText(c.clientVersion.collected ? c.serverVersion.value : c.clientVersion.value)
      mergeForm.hidden = false
      merge.disabled = true
      merged.focus()
    })
    const cancel = button('Cancel', 'conflict-merge-cancel', () => {
      this.merging.delete(c.id)
      mergeForm.hidden = true
      merge.disabled = false
    })
    mergeForm.append(h('div', { className: 'actions' }, h('button', { type: 'submit', textContent: 'Save merged', testid: 'conflict-save-merged' }), cancel))
    mergeForm.addEventListener('submit', (event) => {
      event.preventDefault()
      const value = this.parseMerged(c, merged.value)
      if (value !== undefined) void this.resolve(c, 'merged', { [c.field]: value })
    })
    return h(
      'li',
      { testid: 'conflict', className: 'conflict' },
      h('p', { className: 'what' }, h('span', { textContent: this.entityLabel(c), testid: 'conflict-entity' }), ' · ', h('code', { textContent: c.field, testid: 'conflict-field' }), h('span', { className: 'hint', textContent: ` · ${time(c.timestamp)}` })),
      h('div', { className: 'versions' }, this.side('server', 'Server', c.serverVersion), this.side('client', 'Client', c.clientVersion)),
      h('div', { className: 'actions' }, keepServer, keepClient, merge),
      mergeForm,
    )
  }

  /** The merged value for the field: text as it is (empty is null for an id), JSON for any other value. */
  private parseMerged(c: Conflict, text: string): Json | undefined {
    const sides = [c.serverVersion.value, c.clientVersion.value].filter((v) => v !== undefined)
    if (sides.every((v) => typeof v === 'string' || v === null)) return text === '' && ID_FIELDS.has(c.field) ? null : text
    try {
      return JSON.parse(text) as Json
    } catch {
      this.say(`The merged value of ${c.field} must be JSON.`, 'error')
      return undefined
    }
  }

  /** Resolves on the server (waiting for a connection); the panel updates on the resolved `conflict` event. */
  private async resolve(c: Conflict, winner: 'server' | 'client' | 'merged', mergedData?: Record<string, Json>): Promise<void> {
    const row = this.ui.list.querySelector<HTMLElement>(`li[data-id="${CSS.escape(c.id)}"]`)
    if (row) row.inert = true
    if (this.client.status !== 'synced') this.say('The resolution is sent once connected.')
    try {
      await c.resolve(winner, mergedData)
      this.say('')
    } catch (err) {
      if (row) row.inert = false
      if (err instanceof SyncClientError && err.code === 'CONFLICT_NOT_FOUND') this.say('This conflict was already resolved on another device.')
      else this.say(err instanceof Error ? err.message : String(err), 'error')
    }
  }
}
