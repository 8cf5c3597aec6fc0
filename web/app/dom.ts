/**
 * The few DOM helpers the web client is built with: no framework, every
 * value set as text (never as HTML), and a keyed list that redraws only the
 * rows whose content changed, so a row being edited (or focused) is left
 * alone while the rest of the list follows the document live.
 */
import type { SyncClient, SyncClientEvents } from '@superclip/sync-client'

export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id)
  if (!(el instanceof type)) throw new Error(`#${id} is missing from the page`)
  return el
}

type Child = Node | string | null | undefined | false
type Props<K extends keyof HTMLElementTagNameMap> = Partial<HTMLElementTagNameMap[K]> & { testid?: string }

/** An element with `props` set (`testid` as `data-testid`) and `children` appended (strings as text). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props<K> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const { testid, ...rest } = props
  const el = Object.assign(document.createElement(tag), rest)
  if (testid !== undefined) el.dataset.testid = testid
  for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child)
  return el
}

/** A `type="button"` button running `onClick`. */
export function button(label: string, testid: string, onClick: () => void, props: Partial<HTMLButtonElement> = {}): HTMLButtonElement {
  const b = h('button', { type: 'button', textContent: label, testid, ...props })
  b.addEventListener('click', onClick)
  return b
}

/** Runs `render` once at the end of the current task, however often it is asked for meanwhile. */
export function batched(render: () => void): () => void {
  let queued = false
  return () => {
    if (queued) return
    queued = true
    queueMicrotask(() => {
      queued = false
      render()
    })
  }
}

/**
 * The rows of a list element, one per item, by id. `update` draws a row anew
 * only when its item's `signature` changed and it is not `held` (being
 * edited), moves rows only where the order changed, and removes the rows of
 * items gone.
 */
export class KeyedList<T extends { id: string }> {
  private readonly rows = new Map<string, { signature: string; el: HTMLElement }>()

  constructor(
    private readonly container: HTMLElement,
    private readonly draw: (item: T) => HTMLElement,
    private readonly signature: (item: T) => string,
  ) {}

  update(items: readonly T[], held: (id: string) => boolean = () => false): void {
    const ids = new Set(items.map((item) => item.id))
    for (const [id, row] of this.rows) {
      if (ids.has(id)) continue
      row.el.remove()
      this.rows.delete(id)
    }
    items.forEach((item, index) => {
      const signature = this.signature(item)
      let row = this.rows.get(item.id)
      if (!row || (row.signature !== signature && !held(item.id))) {
        const el = this.draw(item)
        el.dataset.id = item.id
        row?.el.replaceWith(el)
        row = { signature, el }
        this.rows.set(item.id, row)
      }
      const at = this.container.children[index]
      if (at !== row.el) this.container.insertBefore(row.el, at ?? null)
    })
  }

  /** The row of `id` drawn anew now (e.g. an editor closed). */
  redraw(item: T): void {
    const row = this.rows.get(item.id)
    if (!row) return
    const el = this.draw(item)
    el.dataset.id = item.id
    row.el.replaceWith(el)
    this.rows.set(item.id, { signature: this.signature(item), el })
  }

  /** Whether the item's content changed since its row was drawn. */
  changed(item: T): boolean {
    return this.rows.get(item.id)?.signature !== this.signature(item)
  }

  clear(): void {
    this.rows.clear()
    this.container.replaceChildren()
  }
}

/** The listeners a view adds to the SDK client and to its page, removed together by `off()` when the view goes. */
export class Listeners {
  private readonly offs: (() => void)[] = []

  client<E extends keyof SyncClientEvents>(client: SyncClient, event: E, listener: SyncClientEvents[E]): void {
    client.on(event, listener)
    this.offs.push(() => client.off(event, listener))
  }

  /** `onSubmit` for each submit of `form` (the page does not navigate). */
  submit(form: HTMLFormElement, onSubmit: () => void): void {
    const listener = (event: SubmitEvent): void => {
      event.preventDefault()
      onSubmit()
    }
    form.addEventListener('submit', listener)
    this.offs.push(() => form.removeEventListener('submit', listener))
  }

  off(): void {
    for (const off of this.offs.splice(0)) off()
  }
}
