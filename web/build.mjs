// make web: bundles the web client into build/web/ under names that carry a
// hash of their content (app-<hash>.js, app-<hash>.css), and writes
// build/web/index.html naming them. A page then never meets a bundle of
// another build, whatever a cache kept, and a deploy can let browsers and
// CloudFront keep the bundle for good.
//
// Usage: node web/build.mjs (from any folder).

import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const web = dirname(fileURLToPath(import.meta.url));
const out = join(web, '..', 'build', 'web');

// What web/index.html names, each replaced by its build's file.
const entries = [
  { placeholder: 'app.js', in: 'src/main.js' },
  { placeholder: 'app.css', in: 'src/app.css' },
];

// Every name this script writes, and app.js and app.css, which make web
// wrote before the names were hashed: anything else in build/web (the
// deploy's config.json) is not ours to remove. esbuild's hashes are 8
// characters of A-Z and 2-7.
const ours = /^(app(-[A-Z2-7]{8})?\.(js|css)|index\.html)$/;

async function main() {
  const before = await readdir(out).catch((err) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));

  const result = await esbuild.build({
    entryPoints: entries.map((e) => ({ in: e.in, out: 'app' })),
    entryNames: '[name]-[hash]',
    absWorkingDir: web,
    outdir: out,
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    logLevel: 'warning',
    metafile: true,
  });

  const built = new Map(); // entry point (as in entries) → file name
  for (const [file, meta] of Object.entries(result.metafile.outputs)) {
    if (meta.entryPoint) built.set(meta.entryPoint, basename(file));
  }

  let html = await readFile(join(web, 'index.html'), 'utf8');
  for (const e of entries) {
    const name = built.get(e.in);
    if (!name) throw new Error(`esbuild reported no output for ${e.in}`);
    // Only an attribute's whole value, so that the same words in text or a
    // comment are left alone; exactly once, so that a renamed or moved
    // reference stops the build instead of shipping a page without it.
    const ref = new RegExp(`(\\s(?:src|href)=")${e.placeholder.replace('.', '\\.')}(")`, 'g');
    const found = html.match(ref)?.length ?? 0;
    if (found !== 1) {
      throw new Error(`web/index.html: ${found} src="${e.placeholder}" or href="${e.placeholder}" attributes, want 1`);
    }
    html = html.replace(ref, `$1${name}$2`);
  }

  // The page last, and whole (a rename), so that make dev, serving this
  // folder while it is rebuilt, never names files not yet written; the old
  // bundle goes only after that, for the same reason.
  const tmp = join(out, '.index.html.tmp');
  await writeFile(tmp, html);
  await rename(tmp, join(out, 'index.html'));

  const keep = new Set([...built.values(), 'index.html']);
  for (const name of before) {
    if (ours.test(name) && !keep.has(name)) await rm(join(out, name), { force: true });
  }
}

main().catch((err) => {
  // esbuild has already printed its own errors, with their places.
  if (!err.errors) console.error(`web/build.mjs: ${err.message}`);
  process.exitCode = 1;
});
