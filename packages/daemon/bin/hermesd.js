#!/usr/bin/env -S node --max-semi-space-size=1
// A small young generation: hermesd allocates little per second, and the default semi-space reserves
// ~30 MB of RSS that an always-on daemon never needs (measured: 128 MB -> 94 MB).
import { main } from '../dist/cli.js';

await main();
