/**
 * The web client's service worker (`/app/sw.js`, scope `/app/`): keeps the
 * app shell (the page, its script and its style) in a cache so the page
 * loads offline. Network first: online, every file comes from the server (so
 * a rebuild is picked up at the next load) and the cache is refreshed with
 * it; offline, the cached copy is served. The clips themselves are not its
 * business: the SDK keeps the document in IndexedDB.
 *
 * Built as a classic script (scripts/build-app.mjs). The web tsconfig has the
 * DOM lib, not WebWorker's (the two clash), so the few service-worker types
 * used here are declared below.
 */

interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request
  respondWith(response: Promise<Response>): void
}
interface ServiceWorkerScope {
  skipWaiting(): Promise<void>
  readonly clients: { claim(): Promise<void> }
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void
}

const worker = self as unknown as ServiceWorkerScope

const CACHE = 'superclip-app-v1'
const SCOPE = '/app/'
const SHELL = ['/app/', '/app/main.js', '/app/main.css']

worker.addEventListener('install', (event) => {
  // The shell is cached before this worker takes over; a new one takes over at once.
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => worker.skipWaiting()))
})

worker.addEventListener('activate', (event) => {
  const old = caches.keys().then((keys) => Promise.all(keys.filter((k) => k.startsWith('superclip-app-') && k !== CACHE).map((k) => caches.delete(k))))
  // The page that registered it is controlled from now on, not only from its next load.
  event.waitUntil(old.then(() => worker.clients.claim()))
})

worker.addEventListener('fetch', (event) => {
  const { request } = event
  const url = new URL(request.url)
  // The app's own files only; the socket and anything else go to the network untouched.
  if (request.method !== 'GET' || url.origin !== location.origin || !url.pathname.startsWith(SCOPE)) return
  event.respondWith(networkFirst(request))
})

async function networkFirst(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE)
  try {
    const response = await fetch(request)
    if (response.ok) await cache.put(request, response.clone())
    return response
  } catch (err) {
    // Offline: the cached copy; a page of the app (a navigation) is the shell.
    const cached = (await cache.match(request, { ignoreSearch: true })) ?? (request.mode === 'navigate' ? await cache.match(SCOPE) : undefined)
    if (cached) return cached
    throw err
  }
}
