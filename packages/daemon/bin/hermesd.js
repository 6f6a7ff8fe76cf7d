#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1
// A small young generation: hermesd allocates little per second, and the default semi-space reserves
// ~30 MB of RSS that an always-on daemon never needs (measured: 128 MB -> 94 MB). One V8 background thread instead
// of four: fewer thread arenas and stacks (idle 3-node mesh: RSS 97-101 -> 92-94 MiB, CPU no worse).
import { main } from '../dist/cli.js';

await main();
