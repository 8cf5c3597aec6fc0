/**
 * The SuperClip web client (/app/): sign in by pasting a device token, then
 * the user's clips, folders and tags, live, through the offline-first SDK
 * (@superclip/sync-client) keeping the document in this browser's IndexedDB.
 * Edits made offline are kept there and sent once back online; the service
 * worker (sw.ts) keeps the page itself loadable offline.
 *
 * This file wires the page: sign-in and sign-out, one SyncClient per
 * signed-in session, and the views (clips.ts, labels.ts, conflicts.ts,
 * status.ts) over it.
 */
import { SyncClient } from '@superclip/sync-client'
import { ClipsView } from './clips.js'
import { ConflictsPanel } from './conflicts.js'
import { byId } from './dom.js'
import { LabelsPanel } from './labels.js'
import { deviceId, deviceToken, userOfToken } from './session.js'
import { watchStatus } from './status.js'

const ui = {
  status: byId('status', HTMLElement),
  who: byId('who', HTMLElement),
  signOut: byId('sign-out', HTMLButtonElement),
  message: byId('message', HTMLElement),
  signIn: byId('sign-in', HTMLFormElement),
  token: byId('token', HTMLTextAreaElement),
  app: byId('app', HTMLElement),
}

function say(message: string, kind: 'info' | 'error' = 'info'): void {
  ui.message.textContent = message
  ui.message.className = kind
}

/** The signed-in session: its client and what to undo at sign-out. */
let session: { client: SyncClient; dispose: () => void } | undefined

function showSignedIn(userId: string | undefined): void {
  ui.signIn.hidden = userId !== undefined
  ui.app.hidden = userId === undefined
  ui.signOut.hidden = userId === undefined
  ui.status.hidden = userId === undefined
  ui.who.textContent = userId === undefined ? '' : `${userId} · ${deviceId()}`
}

function start(token: string): void {
  const user = userOfToken(token)
  if ('error' in user) {
    say(user.error, 'error')
    return
  }
  deviceToken.set(token)
  // Not connecting while the browser knows it is offline: the SDK connects on the `online` event.
  const client = new SyncClient({ url: location.origin, token, deviceId: deviceId(), storage: 'indexeddb' })
  const views = [
    new ClipsView(client, { form: byId('new-clip', HTMLFormElement), title: byId('new-clip-title', HTMLInputElement), content: byId('new-clip-content', HTMLTextAreaElement), list: byId('clip-list', HTMLUListElement), empty: byId('clips-empty', HTMLElement) }, say),
    new LabelsPanel(client, client.folders, 'folder', { form: byId('new-folder', HTMLFormElement), name: byId('new-folder-name', HTMLInputElement), list: byId('folder-list', HTMLUListElement), empty: byId('folders-empty', HTMLElement) }, say),
    new LabelsPanel(client, client.tags, 'tag', { form: byId('new-tag', HTMLFormElement), name: byId('new-tag-name', HTMLInputElement), list: byId('tag-list', HTMLUListElement), empty: byId('tags-empty', HTMLElement) }, say),
    new ConflictsPanel(client, { panel: byId('conflicts', HTMLElement), list: byId('conflict-list', HTMLUListElement) }, say),
  ]
  const stopStatus = watchStatus(client, ui.status)
  const onError = (err: { code: string; message: string }): void => {
    if (err.code === 'UNAUTHORIZED' || err.code === 'REVOKED') say(`The server refused this device (${err.code}: ${err.message}). Sign out and paste a new token.`, 'error')
    else say(`${err.code}: ${err.message}`, 'error')
  }
  // A connection error is old news once synced again.
  const onStatus = (status: string): void => {
    if (status === 'synced' && ui.message.className === 'error' && session?.client === client && client.lastError === undefined) say('')
  }
  client.on('error', onError)
  client.on('status', onStatus)
  session = {
    client,
    dispose: () => {
      for (const view of views) view.dispose()
      stopStatus()
      client.off('error', onError)
      client.off('status', onStatus)
    },
  }
  showSignedIn(user.userId)
  say('')
}

async function signOut(): Promise<void> {
  const current = session
  session = undefined
  deviceToken.clear()
  showSignedIn(undefined)
  say('Signed out. The clips stay in this browser for your next sign-in.')
  if (current) {
    current.dispose()
    await current.client.close()
  }
  ui.token.focus()
}

ui.signIn.addEventListener('submit', (event) => {
  event.preventDefault()
  const token = ui.token.value.trim()
  ui.token.value = ''
  if (token !== '') start(token)
})
ui.signOut.addEventListener('click', () => void signOut())

// The page loads offline once the service worker has it (sw.ts). Service workers need a secure origin.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch((err: unknown) => say(`Offline use is unavailable: ${String(err)}`, 'error'))
}

const saved = deviceToken.get()
if (saved === null) showSignedIn(undefined)
else start(saved)
