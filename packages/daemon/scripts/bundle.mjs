// Builds dist/hermesd.bundle.js: hermesd and what it imports in one minified file, which bin/hermesd.js runs
// while it is newer than every hermes-mesh file it was made from (dist/hermesd.bundle.json lists them).
// Why: V8 keeps every loaded module's source in the heap, and minified source is less than half the size
// (3-node idle mesh: RSS 85-90 -> ~75 MiB). Modules loaded only on demand stay outside, and so lazy.
import { writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const daemon = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(daemon, '../..');
const dist = resolve(daemon, 'dist');
const result = await build({
  absWorkingDir: root,
  entryPoints: [resolve(dist, 'cli.js')],
  outfile: resolve(dist, 'hermesd.bundle.js'),
  bundle: true,
  minify: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  // Native addons, and modules the daemon loads only when it needs them (lazy imports must stay lazy).
  external: ['classic-level', 'msgpackr-extract', 'systeminformation', '@libp2p/mdns', 'yaml', 'fast-xml-parser'],
  // Bundled CommonJS modules call require(): give the ES module one.
  banner: {
    js: "import { createRequire as __hermesRequire } from 'node:module'; const require = __hermesRequire(import.meta.url);",
  },
});
const inputs = Object.keys(result.metafile.inputs)
  .filter((p) => !p.includes('node_modules/'))
  .map((p) => relative(dist, resolve(root, p)));
writeFileSync(resolve(dist, 'hermesd.bundle.json'), `${JSON.stringify({ inputs }, null, 1)}\n`);
