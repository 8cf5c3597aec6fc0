/**
 * Builds the operators' web console (web/console/) into dist/console/: the
 * TypeScript bundled with uPlot into main.js, the CSS (uPlot's and ours) into
 * main.css, and index.html copied. Run by `npm run build` after tsc, and by
 * test/console.browser.test.ts before it opens the page; the server serves
 * dist/console/ at /console (src/controllers/console.controller.ts).
 *
 * `node scripts/build-console.mjs [outdir]` (default dist/console).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import process from 'node:process'
import { build } from 'esbuild'

const root = path.resolve(import.meta.dirname, '..')
const source = path.join(root, 'web', 'console')
const outdir = path.resolve(root, process.argv[2] ?? path.join('dist', 'console'))

/**
 * Each file is written beside its place and renamed over it: a server reading
 * the console while another build runs (the tests build it in parallel) never
 * reads half a file.
 */
async function writeAtomically(file, contents) {
  const temp = `${file}.${process.pid}.tmp`
  await writeFile(temp, contents)
  await rename(temp, file)
}

await mkdir(outdir, { recursive: true })
const { outputFiles } = await build({
  absWorkingDir: root,
  entryPoints: { main: path.join(source, 'main.ts'), style: path.join(source, 'console.css') },
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: 'linked',
  // The browser code has its own tsconfig (DOM lib, bundler resolution).
  tsconfig: path.join(root, 'web', 'tsconfig.json'),
  logLevel: 'warning',
  write: false,
})
for (const out of outputFiles) await writeAtomically(out.path, out.contents)
await writeAtomically(path.join(outdir, 'index.html'), await readFile(path.join(source, 'index.html')))
// Silent on success, as tsc is: `npm run -s token` and `npm run -s admin -- --json` print only their own output.
