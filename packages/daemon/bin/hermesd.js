#!/usr/bin/env -S MALLOC_TRIM_THRESHOLD_=131072 node --v8-pool-size=1
// MALLOC_TRIM_THRESHOLD_: glibc's default trim threshold, held fixed. Left to itself glibc raises it (up to 32 MiB)
// each time a large buffer is freed, after which the C heap keeps what start-up and TurboFan used: idle RSS of a
// 3-node mesh 80.3-81.0 -> 71.1-75.5 MiB, CPU no different.
// One V8 background thread instead of four: fewer thread arenas and stacks (idle 3-node mesh: RSS 97-101 ->
// 92-94 MiB, CPU no worse). The young generation keeps V8's default size: capping it at 1 MB saved no idle RSS
// once the pool was small (91.8 vs 89.7 MiB), and under load it made GC a third of a worker's CPU
// (20k noops over 3 workers: 0.46 -> 0.35 ms of worker CPU per action without the cap).
import { readFileSync, statSync } from 'node:fs';

// The minified bundle (`npm run build` makes it; V8 keeps every module's source in memory, so it saves ~10 MiB
// of idle RSS) while it is newer than each file it was made from; otherwise, e.g. after a bare `tsc -b`, the
// modules themselves, so a stale bundle never runs.
function bundleIsFresh() {
  const dist = new URL('../dist/', import.meta.url);
  try {
    const built = statSync(new URL('hermesd.bundle.js', dist)).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(new URL('hermesd.bundle.json', dist), 'utf8'));
    return inputs.length > 0 && inputs.every((p) => statSync(new URL(p, dist)).mtimeMs <= built);
  } catch {
    return false;
  }
}

const { main } = await import(
  process.env.HERMESD_NO_BUNDLE !== '1' && bundleIsFresh() ? '../dist/hermesd.bundle.js' : '../dist/cli.js'
);
await main();
