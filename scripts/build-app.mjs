/**
 * Builds the web client (web/app/) into dist/app/: main.ts bundled with the
 * SDK (@superclip/sync-client, its built client/dist/, so `npm run
 * build:client` first, as `npm run build` does) into main.js, the CSS into
 * main.css, the service worker into sw.js, and index.html copied. Run by
 * `npm run build` after tsc, and by test/app.browser.test.ts before it opens
 * the page; the server serves dist/app/ at /app/ (src/controllers/app.controller.ts).
 *
 * The SDK is bundled for the browser: platform 'browser' makes esbuild honour
 * the package's `browser` field, which leaves out its Node LevelDB store.
 *
 * `node scripts/build-app.mjs [outdir]` (default dist/app).
 */
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import process from 'node:process'
import { build } from 'esbuild'
import { browserBuild, root, writeAtomically } from './lib/web-build.mjs'

const source = path.join(root, 'web', 'app')
const outdir = path.resolve(root, process.argv[2] ?? path.join('dist', 'app'))
const common = browserBuild(outdir)

await mkdir(outdir, { recursive: true })
const [page, worker] = await Promise.all([
  build({
    ...common,
    entryPoints: [
      { in: path.join(source, 'main.ts'), out: 'main' },
      { in: path.join(source, 'main.css'), out: 'main' },
    ],
    format: 'esm',
  }),
  // A classic script: registered without `type: 'module'`, it runs in every browser with service workers.
  build({ ...common, entryPoints: { sw: path.join(source, 'sw.ts') }, format: 'iife' }),
])
for (const out of [...page.outputFiles, ...worker.outputFiles]) await writeAtomically(out.path, out.contents)
await writeAtomically(path.join(outdir, 'index.html'), await readFile(path.join(source, 'index.html')))
// Silent on success, as tsc is: `npm run -s token` and `npm run -s admin -- --json` print only their own output.
