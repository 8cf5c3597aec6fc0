/**
 * The folders and tags panels: each a list of names to create, rename and
 * delete (a soft delete: the entity goes to the user's trash). Clips keep
 * their folder and tag ids; a deleted one is simply no longer shown on them.
 */
import type { Folder, SyncClient, Tag } from '@superclip/sync-client'
import { batched, button, h, KeyedList, Listeners } from './dom.js'

type Label = Folder | Tag

/** What a panel edits: the folders or the tags of the client. */
export interface LabelStore {
  list(): Label[]
  create(fields: { name: string }): string
  update(id: string, fields: { name: string }): void
  delete(id: string): void
}

export interface LabelElements {
  form: HTMLFormElement
  name: HTMLInputElement
  list: HTMLUListElement
  /** Shown while there are none. */
  empty: HTMLElement
}

/** Live labels sorted by name (then id), for the panels and the clip editor. */
export const sortedLabels = (store: LabelStore): Label[] =>
  store.list().sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.id.localeCompare(b.id))

export class LabelsPanel {
  private readonly rows: KeyedList<Label>
  private readonly renaming = new Set<string>()
  private readonly listeners = new Listeners()

  /** `kind`: `folder` or `tag`, for the test ids (`folder`, `folder-rename`, …). */
  constructor(
    private readonly client: SyncClient,
    private readonly store: LabelStore,
    private readonly kind: 'folder' | 'tag',
    private readonly ui: LabelElements,
    private readonly say: (message: string, kind?: 'info' | 'error') => void,
  ) {
    this.rows = new KeyedList(ui.list, (label) => this.row(label), (label) => label.name ?? '')
    this.listeners.client(client, 'change', batched(() => this.render()))
    this.listeners.submit(ui.form, () => {
      const name = ui.name.value.trim()
      if (name === '') return
      this.write(() => store.create({ name }))
      ui.name.value = ''
    })
    this.render()
  }

  dispose(): void {
    this.listeners.off()
    this.rows.clear()
  }

  private render(): void {
    const labels = sortedLabels(this.store)
    this.rows.update(labels, (id) => this.renaming.has(id))
    this.ui.empty.hidden = labels.length > 0
  }

  private write(edit: () => void): void {
    try {
      edit()
    } catch (err) {
      this.say(err instanceof Error ? err.message : String(err), 'error')
    }
  }

  private row(label: Label): HTMLLIElement {
    const { kind } = this
    return h(
      'li',
      { testid: kind, className: 'label' },
      h('span', { className: 'label-name', textContent: label.name ?? '', testid: `${kind}-name` }),
      h(
        'span',
        { className: 'actions' },
        button('Rename', `${kind}-rename`, () => this.rename(label)),
        button('Delete', `${kind}-delete`, () => this.write(() => this.store.delete(label.id)), { className: 'danger' }),
      ),
    )
  }

  /** Swaps the row for a name field; saved on submit, dropped on Escape or Cancel. */
  private rename(label: Label): void {
    const { kind } = this
    this.renaming.add(label.id)
    const input = h('input', { value: label.name ?? '', required: true, testid: `${kind}-rename-name`, ariaLabel: `New ${kind} name` })
    const done = (): void => {
      this.renaming.delete(label.id)
      const current = this.store.list().find((l) => l.id === label.id)
      if (current) this.rows.redraw(current)
      this.render()
    }
    const form = h(
      'form',
      { className: 'label rename' },
      input,
      h('button', { type: 'submit', textContent: 'Save', testid: `${kind}-rename-save` }),
      button('Cancel', `${kind}-rename-cancel`, done),
    )
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const name = input.value.trim()
      if (name !== '' && name !== label.name) this.write(() => this.store.update(label.id, { name }))
      done()
    })
    input.addEventListener('keydown', (event) => event.key === 'Escape' && done())
    const row = this.ui.list.querySelector<HTMLElement>(`li[data-id="${CSS.escape(label.id)}"]`)
    row?.replaceChildren(form)
    input.focus()
    input.select()
  }
}
