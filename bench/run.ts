// Runs every bench/*.bench.ts (or those named on the command line) in its own process, one after another,
// so one benchmark's garbage and threads never skew the next. Each prints one JSON line per figure.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

let failed = 0;
for (const file of files) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(here, file)], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    console.error(JSON.stringify({ bench: file, error: `exited with ${result.status ?? result.signal}` }));
  }
}
process.exit(failed === 0 ? 0 : 1);
