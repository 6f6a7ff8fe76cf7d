#!/usr/bin/env -S node --v8-pool-size=1
// One V8 background thread instead of four: fewer thread arenas and stacks (idle 3-node mesh: RSS 97-101 ->
// 92-94 MiB, CPU no worse). The young generation keeps V8's default size: capping it at 1 MB saved no idle RSS
// once the pool was small (91.8 vs 89.7 MiB), and under load it made GC a third of a worker's CPU
// (20k noops over 3 workers: 0.46 -> 0.35 ms of worker CPU per action without the cap).
import { main } from '../dist/cli.js';

await main();
