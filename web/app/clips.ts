/**
 * The clips: a form to add one, and the list, newest first, following the
 * document live (every change, local, from the server, or loaded from
 * IndexedDB). Each clip can be edited in place (content, title, folder, tags,
 * pinned) and deleted (soft: it goes to the user's trash).
 *
 * A form's edit is done once the SDK has it in IndexedDB (`whenStored`): then
 * the form clears or closes, so a page closed right after still has it.
 */
import type { Clip, ClipFields, SyncClient } from '@superclip/sync-client'
import { batched, button, h, KeyedList, Listeners } from './dom.js'
import { sortedLabels } from './labels.js'

export interface ClipElements {
  form: HTMLFormElement
  title: HTMLInputElement
  content: HTMLTextAreaElement
  list: HTMLUListElement
  empty: HTMLElement
}

const LINK = /^https?:\/\/\S+$/

/** Newest first; clips without a creation time last, by id. */
const newestFirst = (a: Clip, b: Clip): number => (b.createdAt ?? 0) - (a.createdAt ?? 0) || a.id.localeCompare(b.id)

/** The fields the editor edits, as they were when it opened and as they are on Save. */
type Edited = Pick<ClipFields, 'content' | 'title' | 'folderId' | 'tagIds' | 'pinned'>

/**
 * The fields changed in the editor, against their values when it opened: only
 * those are written, so an edit of the title neither writes the content (a
 * field whose concurrent writes are conflicts) nor undoes another device's
 * change to a field not touched here.
 */
function changedFields(opened: Edited, now: Edited): Partial<Edited> {
  const fields: Partial<Edited> = {}
  if (now.content !== opened.content) fields.content = now.content
  if (now.title !== opened.title) fields.title = now.title
  if (now.folderId !== opened.folderId) fields.folderId = now.folderId
  if (now.pinned !== opened.pinned) fields.pinned = now.pinned
  const same = now.tagIds.length === opened.tagIds.length && now.tagIds.every((t) => opened.tagIds.includes(t))
  if (!same) fields.tagIds = now.tagIds
  return fields
}

const time = (ms: number | undefined): string => (ms === undefined ? '' : new Date(ms).toLocaleString())

export class ClipsView {
  private readonly rows: KeyedList<Clip>
  private readonly editing = new Set<string>()
  private readonly listeners = new Listeners()

  constructor(
    private readonly client: SyncClient,
    private readonly ui: ClipElements,
    private readonly say: (message: string, kind?: 'info' | 'error') => void,
  ) {
    // A row shows its folder's and tags' names too: renaming one redraws the clips that show it.
    this.rows = new KeyedList(ui.list, (clip) => this.row(clip), (clip) => JSON.stringify([clip, this.folderName(clip), this.tagNames(clip)]))
    this.listeners.client(client, 'change', batched(() => this.render()))
    this.listeners.submit(ui.form, () => void this.add())
    this.render()
  }

  dispose(): void {
    this.listeners.off()
    this.rows.clear()
  }

  private render(): void {
    const clips = this.client.clips.list().sort(newestFirst)
    this.rows.update(clips, (id) => this.editing.has(id))
    this.ui.empty.hidden = clips.length > 0
    // An open editor says when its clip changed elsewhere meanwhile (saving writes only the fields edited here).
    for (const clip of clips) {
      if (!this.editing.has(clip.id)) continue
      const note = this.ui.list.querySelector<HTMLElement>(`li[data-id="${CSS.escape(clip.id)}"] .stale`)
      if (note) note.hidden = !this.rows.changed(clip)
    }
  }

  /** Runs an SDK write; a refusal (the schema, a clip deleted meanwhile) is shown. Then waits until it is stored. */
  private async write(edit: () => void): Promise<boolean> {
    try {
      edit()
      await this.client.whenStored()
      return true
    } catch (err) {
      this.say(err instanceof Error ? err.message : String(err), 'error')
      return false
    }
  }

  private async add(): Promise<void> {
    const { form, title, content } = this.ui
    const text = content.value
    if (text.trim() === '') return
    const fields: Partial<ClipFields> = { content: text, contentType: LINK.test(text.trim()) ? 'link' : 'text', source: 'web' }
    if (title.value.trim() !== '') fields.title = title.value.trim()
    form.inert = true
    if (await this.write(() => this.client.clips.create(fields))) form.reset()
    form.inert = false
    content.focus()
  }

  private folderName(clip: Clip): string | undefined {
    return clip.folderId ? this.client.folders.get(clip.folderId)?.name : undefined
  }

  private tagNames(clip: Clip): string[] {
    return (clip.tagIds?.toArray() ?? []).flatMap((id) => this.client.tags.get(id)?.name ?? [])
  }

  private row(clip: Clip): HTMLLIElement {
    const folder = this.folderName(clip)
    return h(
      'li',
      { testid: 'clip', className: clip.pinned ? 'clip pinned' : 'clip' },
      h(
        'div',
        { className: 'clip-head' },
        h('strong', { className: 'clip-title', textContent: clip.title ?? '', testid: 'clip-title' }),
        clip.pinned && h('span', { className: 'chip pin', textContent: 'Pinned', testid: 'clip-pinned' }),
        h('time', { className: 'hint', textContent: time(clip.createdAt) }),
      ),
      h('pre', { className: 'clip-content', textContent: clip.content ?? '', testid: 'clip-content' }),
      h(
        'div',
        { className: 'clip-foot' },
        folder !== undefined && h('span', { className: 'chip folder', textContent: folder, testid: 'clip-folder' }),
        ...this.tagNames(clip).map((name) => h('span', { className: 'chip tag', textContent: name, testid: 'clip-tag' })),
        h(
          'span',
          { className: 'actions' },
          button('Edit', 'clip-edit', () => this.edit(clip.id)),
          button('Delete', 'clip-delete', () => void this.write(() => this.client.clips.delete(clip.id)), { className: 'danger' }),
        ),
      ),
    )
  }

  /** Swaps the clip's row for its editor; Save writes the fields that changed, Cancel (or Escape) closes it. */
  private edit(id: string): void {
    const clip = this.client.clips.get(id)
    const row = this.ui.list.querySelector<HTMLElement>(`li[data-id="${CSS.escape(id)}"]`)
    if (!clip || !row) return
    this.editing.add(id)
    const content = h('textarea', { value: clip.content ?? '', rows: 4, required: true, testid: 'clip-edit-content', ariaLabel: 'Content' })
    const title = h('input', { value: clip.title ?? '', testid: 'clip-edit-title', ariaLabel: 'Title', placeholder: 'Title' })
    const folder = h(
      'select',
      { testid: 'clip-edit-folder', ariaLabel: 'Folder' },
      h('option', { value: '', textContent: 'No folder' }),
      ...sortedLabels(this.client.folders).map((f) => h('option', { value: f.id, textContent: f.name ?? f.id, selected: f.id === clip.folderId })),
    )
    const opened: Edited = { content: clip.content ?? '', title: clip.title ?? '', folderId: clip.folderId ?? null, tagIds: clip.tagIds?.toArray() ?? [], pinned: clip.pinned === true }
    const tagIds = new Set(opened.tagIds)
    const tags = sortedLabels(this.client.tags).map((t) => h('input', { type: 'checkbox', value: t.id, checked: tagIds.has(t.id), testid: 'clip-edit-tag', title: t.name ?? t.id }))
    const pinned = h('input', { type: 'checkbox', checked: clip.pinned === true, testid: 'clip-edit-pinned' })
    const close = (): void => {
      this.editing.delete(id)
      const current = this.client.clips.get(id)
      if (current) this.rows.redraw(current)
      this.render()
    }
    const form = h(
      'form',
      { className: 'clip-editor', testid: 'clip-editor' },
      h('p', { className: 'stale', hidden: true, textContent: 'This clip changed on another device since you opened it; saving writes only the fields you changed.' }),
      h('label', {}, 'Title', title),
      h('label', {}, 'Content', content),
      h('label', {}, 'Folder', folder),
      h(
        'fieldset',
        { className: 'tags' },
        h('legend', { textContent: 'Tags' }),
        tags.length === 0 ? h('span', { className: 'hint', textContent: 'No tags yet.' }) : null,
        ...tags.map((box) => h('label', { className: 'check' }, box, box.title)),
      ),
      h('label', { className: 'check' }, pinned, 'Pinned'),
      h('div', { className: 'actions' }, h('button', { type: 'submit', textContent: 'Save', testid: 'clip-save' }), button('Cancel', 'clip-cancel', close)),
    )
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const fields = changedFields(opened, {
        content: content.value,
        title: title.value,
        folderId: folder.value === '' ? null : folder.value,
        // Ids of tags deleted since are not among the boxes: they are kept.
        tagIds: [...opened.tagIds.filter((t) => !tags.some((box) => box.value === t)), ...tags.filter((box) => box.checked).map((box) => box.value)],
        pinned: pinned.checked,
      })
      if (Object.keys(fields).length === 0) return close()
      form.inert = true
      void this.write(() => this.client.clips.update(id, fields)).then((ok) => {
        form.inert = false
        if (ok) close()
      })
    })
    form.addEventListener('keydown', (event) => event.key === 'Escape' && close())
    row.replaceChildren(form)
    row.classList.add('editing')
    content.focus()
  }
}
