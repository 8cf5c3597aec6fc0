/**
 * Builds the operators' web console (web/console/) into dist/console/: the
 * TypeScript bundled with uPlot into main.js, the CSS (uPlot's and ours) into
 * main.css, and index.html copied. Run by `npm run build` after tsc, and by
 * test/console.browser.test.ts before it opens the page; the server serves
 * dist/console/ at /console (src/controllers/console.controller.ts).
 *
 * `node scripts/build-console.mjs [outdir]` (default dist/console).
 */
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import process from 'node:process'
import { build } from 'esbuild'
import { browserBuild, root, writeAtomically } from './lib/web-build.mjs'

const source = path.join(root, 'web', 'console')
const outdir = path.resolve(root, process.argv[2] ?? path.join('dist', 'console'))

await mkdir(outdir, { recursive: true })
const { outputFiles } = await build({
  ...browserBuild(outdir),
  entryPoints: { main: path.join(source, 'main.ts'), style: path.join(source, 'console.css') },
  format: 'esm',
})
for (const out of outputFiles) await writeAtomically(out.path, out.contents)
await writeAtomically(path.join(outdir, 'index.html'), await readFile(path.join(source, 'index.html')))
// Silent on success, as tsc is: `npm run -s token` and `npm run -s admin -- --json` print only their own output.
