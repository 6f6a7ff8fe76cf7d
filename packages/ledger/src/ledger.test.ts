import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventInput } from './events.js';
import { type AppendResult, chunkEntries, type Ledger, type LedgerEntry, openLedger } from './ledger.js';
import { eventPackr, LedgerOpenError, MARKER_KEY } from './storage.js';
import { tempLedgers } from './testing/temp-ledgers.js';
import { lifecycleInputs } from './testing/workload.js';

const { open, tempDir, cleanup } = tempLedgers('ledger-');
afterEach(cleanup);

let clock = 1_000;
const now = () => clock++;

async function start(path = tempDir(), origin = 'node-a', extra: { snapshotEvery?: number; sync?: boolean } = {}) {
  const ledger = await openLedger({ path, origin, now, ...extra });
  open.push(ledger);
  return ledger;
}

async function reopen(ledger: Ledger, path: string, extra: { snapshotEvery?: number } = {}) {
  await ledger.close();
  open.splice(open.indexOf(ledger), 1);
  return start(path, ledger.origin, extra);
}

const submit = (goalId: string, text: string, coordinator = 'node-a'): EventInput => ({
  type: 'goal.submitted',
  goalId,
  data: { text, coordinator },
});

function waitForEntries(ledger: Ledger, from: number, count: number): Promise<LedgerEntry[]> {
  return new Promise((resolve, reject) => {
    const seen: LedgerEntry[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${seen.length} of ${count} entries arrived`)), 5000);
    const stop = ledger.subscribe(from, (entries) => {
      seen.push(...entries);
      if (seen.length >= count) {
        clearTimeout(timer);
        stop();
        resolve(seen);
      }
    });
  });
}

describe('chunkEntries', () => {
  it('cuts by count and by bytes, and gives an entry larger than the limit a chunk of its own', () => {
    const sized = (...sizes: number[]) => sizes.map((size, i) => ({ id: i, size }));
    const ids = (chunks: Array<Array<{ id: number }>>) => chunks.map((c) => c.map((e) => e.id));
    expect(ids(chunkEntries(sized(1, 1, 1, 1, 1), 2, 100))).toEqual([[0, 1], [2, 3], [4]]);
    expect(ids(chunkEntries(sized(40, 40, 40, 10), 10, 100))).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(ids(chunkEntries(sized(10, 500, 10), 10, 100))).toEqual([[0], [1], [2]]);
    expect(chunkEntries([], 10, 100)).toEqual([]);
  });
  it('hands subscribers each entry with its stored size', async () => {
    const ledger = await start();
    const entries = waitForEntries(ledger, 0, 1);
    await ledger.append(submit('g1', 'one'));
    const [entry] = await entries;
    expect(entry!.size).toBeGreaterThan(20);
    expect(entry!.size).toBe(eventPackr.pack(entry!.event).length);
  });
});

describe('openLedger', () => {
  it('hashes the state once per log position, however often it is asked', async () => {
    const ledger = await start();
    const core = (ledger as unknown as { core: { stateHash(): string } }).core;
    let hashed = 0;
    const hash = core.stateHash.bind(core);
    core.stateHash = () => {
      hashed++;
      return hash();
    };
    await ledger.append(submit('g1', 'one'));
    const first = ledger.stateHash();
    expect(ledger.stateHash()).toBe(first);
    expect(hashed).toBe(1);
    await ledger.append(submit('g2', 'two'));
    expect(ledger.stateHash()).not.toBe(first);
    expect(hashed).toBe(2);
  });

  it('appends, folds and reloads the same state', async () => {
    const path = tempDir();
    const ledger = await start(path);
    const results = await ledger.appendMany(
      lifecycleInputs({ prefix: 'p', goals: 3, actionsPerGoal: 2, coordinator: 'node-a', worker: 'node-a' }),
    );
    expect(results.every((r) => r.ok && r.rejected === undefined)).toBe(true);
    expect(ledger.goal('p-g1')).toMatchObject({ state: 'COMPLETED', coordinator: 'node-a' });
    expect(ledger.action('p-g1-a0')).toMatchObject({ state: 'COMPLETED', epoch: 1, node: 'node-a', attempts: 1 });
    expect(ledger.versionVector()).toEqual({ 'node-a': results.length });
    const hash = ledger.stateHash();
    const again = await reopen(ledger, path);
    expect(again.stateHash()).toBe(hash);
    expect(again.openStats.events).toBe(results.length);
    const next = await again.append(submit('p-g9', 'one more'));
    expect(next.ok && next.event.seq).toBe(results.length + 1);
  });

  it('puts appends made in one tick into one batch and acknowledges them together', async () => {
    const ledger = await start();
    const positions: number[] = [];
    const pending = Array.from({ length: 500 }, (_, i) =>
      ledger.append(submit(`g${i}`, `goal ${i}`)).then((r) => {
        positions.push(ledger.position());
        return r;
      }),
    );
    const results = await Promise.all(pending);
    expect(results.map((r) => r.ok && r.event.seq)).toEqual(results.map((_, i) => i + 1));
    // Every acknowledgement came after the whole batch was written.
    expect(new Set(positions)).toEqual(new Set([500]));
  });

  it('stores every event once, as msgpackr encodes it, in segments of consecutive positions', async () => {
    const path = tempDir();
    const ledger = await start(path, 'node-a', { snapshotEvery: 0 });
    const remote = (seq: number) => ({
      origin: 'remote',
      seq,
      lamport: seq,
      ts: seq,
      type: 'goal.submitted',
      goalId: `r${seq}`,
      data: { text: `remote ${seq} é 😀`, coordinator: 'remote', extra: [1, null, { deep: 2 ** 40 }] },
    });
    const inputs = lifecycleInputs({ prefix: 's', goals: 600, actionsPerGoal: 3, coordinator: 'node-a', worker: 'w' });
    // A big batch (several segments; the first goes to disk while the rest is encoded), remote events (one held
    // behind a gap, then released) and single appends, all in one tick.
    const [big, held, filled, ...singles] = await Promise.all([
      ledger.appendMany(inputs),
      ledger.ingest([remote(2)]),
      ledger.ingest([remote(1), remote(3)]),
      ...Array.from({ length: 30 }, (_, i) => ledger.append(submit(`x${i}`, `single ${i}`))),
    ]);
    expect(big.every((r) => r.ok)).toBe(true);
    expect(held).toMatchObject({ held: 1 });
    expect(filled).toMatchObject({ accepted: 3 });
    const results = [...big, ...singles] as Array<AppendResult & { ok: true }>;
    const hash = ledger.stateHash();
    const total = inputs.length + 30 + 3;
    expect(ledger.position()).toBe(total);
    await ledger.close();
    open.splice(0);
    const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const stored: unknown[] = [];
    let next = 1;
    for await (const [key, segment] of db.iterator({ gt: Buffer.from([0x65]), lt: Buffer.from([0x66]) })) {
      expect(Number(key.readBigUInt64BE(1))).toBe(next);
      const events = eventPackr.unpackMultiple(segment) as unknown[];
      expect(events.length).toBeLessThanOrEqual(4096);
      expect(Buffer.concat(events.map((e) => eventPackr.pack(e))).equals(segment)).toBe(true);
      stored.push(...events);
      next += events.length;
    }
    await db.close();
    expect(stored).toHaveLength(total);
    for (const r of results) expect(stored[r.position - 1]).toEqual(r.event);
    const again = await start(path);
    expect(again.stateHash()).toBe(hash);
    expect(again.goal('r3')?.text).toBe('remote 3 é 😀');
  });

  it('writes each call in one batch: a big appendMany never becomes durable in parts', async () => {
    const ledger = await start(tempDir(), 'node-a', { snapshotEvery: 0 });
    const seen: number[] = [];
    const durable: number[] = [];
    const off = ledger.subscribe(0, () => durable.push(ledger.position()));
    const inputs = Array.from({ length: 9000 }, (_, i) => submit(`b${i}`, `big ${i}`));
    const before = Array.from({ length: 4000 }, (_, i) => ledger.append(submit(`s${i}`, `small ${i}`)));
    const big = ledger.appendMany(inputs).then((r) => {
      seen.push(ledger.position());
      return r;
    });
    const after = ledger.append(submit('last', 'last'));
    const results = await Promise.all([big, ...before, after]);
    const batch = results[0] as AppendResult[];
    expect(batch.every((r) => r.ok)).toBe(true);
    const first = (batch[0] as AppendResult & { ok: true }).position;
    const last = (batch[batch.length - 1] as AppendResult & { ok: true }).position;
    expect(last - first).toBe(8999);
    // Acknowledged only once all of it is durable, and no durable mark ever fell inside it.
    expect(seen[0]).toBeGreaterThanOrEqual(last);
    await new Promise((resolve) => setTimeout(resolve, 50));
    off();
    for (const mark of durable) expect(mark < first || mark >= last).toBe(true);
    expect(durable[durable.length - 1]).toBe(13_001);
  });

  it('lets what is appended in the same tick share the write of an appendMany made with shareTick', async () => {
    const ledger = await start(tempDir(), 'node-a', { snapshotEvery: 0 });
    const writes: number[] = [];
    const off = ledger.subscribe(0, () => writes.push(ledger.position()));
    const first = ledger.appendMany([submit('g1', 'one'), submit('g2', 'two')], { shareTick: true });
    // Folded before the call returns: a decision on it can be taken (and written) at once.
    expect(ledger.goal('g2')?.text).toBe('two');
    const second = ledger.appendMany([submit('g3', 'three'), submit('g4', 'four')]);
    await Promise.all([first, second]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    off();
    // One write for both calls (without shareTick the first starts at once: [2, 4]).
    expect(writes).toEqual([4]);
  });
  it('gives a batch the results, seqs and state that appending its events one by one gives', async () => {
    const ids = { goalId: 'g', actionId: 'a' };
    const inputs: EventInput[] = [
      submit('g', 'goal'),
      { type: 'goal.submitted', goalId: 'bad', data: { text: 7 } } as never,
      { type: 'action.created', ...ids, data: { flowId: 'f', kind: 'llm', description: 'd', dependsOn: [] } },
      { type: 'action.state', ...ids, epoch: 0, state: 'COMPLETED', data: {} },
      { type: 'action.state', ...ids, epoch: 1, state: 'ASSIGNED', data: { node: 'node-a' } },
      { type: 'action.state', ...ids, epoch: 0, state: 'IN_PROGRESS', data: {} },
      { type: 'nope' } as never,
      { type: 'action.state', ...ids, epoch: 1, state: 'IN_PROGRESS', data: {} },
    ];
    const openAt = (path: string) => {
      let t = 5_000;
      return openLedger({ path, origin: 'node-a', now: () => t++ });
    };
    const batched = await openAt(tempDir());
    const single = await openAt(tempDir());
    try {
      const together = await batched.appendMany(inputs);
      const apart: AppendResult[] = [];
      for (const input of inputs) apart.push(await single.append(input));
      expect(together).toEqual(apart);
      expect(together.filter((r) => r.ok && r.rejected !== undefined)).toHaveLength(2);
      expect(together.filter((r) => !r.ok)).toHaveLength(2);
      expect(batched.stateHash()).toBe(single.stateHash());
      expect(await batched.appendMany([submit('h', 'next'), submit('i', 'next')])).toEqual([
        await single.append(submit('h', 'next')),
        await single.append(submit('i', 'next')),
      ]);
    } finally {
      await Promise.all([batched.close(), single.close()]);
    }
  });

  it('appends after events of its own origin held behind a gap, and releases them', async () => {
    const path = tempDir();
    const ledger = await start(path);
    const own = (seq: number) => ({
      origin: 'node-a',
      seq,
      lamport: seq,
      ts: seq,
      type: 'goal.submitted',
      goalId: `old${seq}`,
      data: { text: `old ${seq}`, coordinator: 'node-a' },
    });
    expect(await ledger.ingest([own(2), own(3)])).toMatchObject({ held: 2 });
    const first = await ledger.append(submit('new1', 'new one'));
    expect(first).toMatchObject({ ok: true, position: 1, event: { seq: 1 } });
    expect(ledger.versionVector()).toEqual({ 'node-a': 3 });
    expect(ledger.gaps()).toEqual([]);
    const next = await ledger.append(submit('new4', 'after'));
    expect(next).toMatchObject({ ok: true, position: 4, event: { seq: 4 } });
    const hash = ledger.stateHash();
    const again = await reopen(ledger, path);
    expect(again.stateHash()).toBe(hash);
    expect(again.goal('old3')?.text).toBe('old 3');
  });

  it('records an illegal transition as rejected and keeps the state', async () => {
    const ledger = await start();
    await ledger.append(submit('g', 'goal'));
    const ids = { goalId: 'g', actionId: 'a' };
    await ledger.append({
      type: 'action.created',
      ...ids,
      data: { flowId: 'f', kind: 'llm', description: 'd', dependsOn: [] },
    });
    const illegal = await ledger.append({ type: 'action.state', ...ids, epoch: 0, state: 'COMPLETED', data: {} });
    expect(illegal).toMatchObject({ ok: true, rejected: 'illegal transition PENDING -> COMPLETED' });
    expect(ledger.action('a')!.state).toBe('PENDING');
    expect(ledger.rejections({ actionId: 'a' })).toEqual([
      expect.objectContaining({ seq: 3, reason: 'illegal transition PENDING -> COMPLETED' }),
    ]);
  });

  it('refuses to append invalid data and uses no seq for it', async () => {
    const ledger = await start();
    const bad = await ledger.append({ type: 'goal.submitted', goalId: 'g', data: { text: 7 } } as never);
    expect(bad).toMatchObject({ ok: false, error: expect.stringContaining('goal.submitted data') });
    const good = await ledger.append(submit('g', 'x'));
    expect(good.ok && good.event.seq).toBe(1);
  });

  it('fences a stale worker: its events from an old epoch do not change the action', async () => {
    const coordinator = await start(tempDir(), 'coord');
    const ids = { goalId: 'g', actionId: 'a' };
    await coordinator.appendMany([
      submit('g', 'goal', 'coord'),
      { type: 'action.created', ...ids, data: { flowId: 'f', kind: 'llm', description: 'd', dependsOn: [] } },
      { type: 'action.state', ...ids, epoch: 1, state: 'ASSIGNED', data: { node: 'w1' } },
      { type: 'action.state', ...ids, epoch: 2, state: 'ASSIGNED', data: { node: 'w2', reason: 'w1 silent' } },
    ]);
    const lamport = coordinator.versionVector().coord! + 5;
    const report = await coordinator.ingest([
      { origin: 'w1', seq: 1, lamport, ts: 1, type: 'action.state', ...ids, epoch: 1, state: 'IN_PROGRESS', data: {} },
      {
        origin: 'w1',
        seq: 2,
        lamport: lamport + 1,
        ts: 2,
        type: 'action.output',
        ...ids,
        epoch: 1,
        data: { ref: 'r' },
      },
      { origin: 'w2', seq: 1, lamport, ts: 3, type: 'action.state', ...ids, epoch: 2, state: 'IN_PROGRESS', data: {} },
    ]);
    expect(report.accepted).toBe(3);
    expect(coordinator.action('a')).toMatchObject({ state: 'IN_PROGRESS', epoch: 2, node: 'w2', attempts: 2 });
    expect(coordinator.action('a')!.output).toBeUndefined();
  });

  it('holds events behind a gap until it fills, and treats repeats as duplicates', async () => {
    const path = tempDir();
    const ledger = await start(path);
    const event = (seq: number) => ({
      origin: 'remote',
      seq,
      lamport: seq,
      ts: seq,
      type: 'goal.submitted',
      goalId: `r${seq}`,
      data: { text: `remote ${seq}`, coordinator: 'remote' },
    });
    expect(await ledger.ingest([event(3), event(2)])).toMatchObject({ accepted: 0, held: 2 });
    expect(ledger.gaps()).toEqual([{ origin: 'remote', have: 0, heldFrom: 2, held: 2 }]);
    expect(ledger.goal('r2')).toBeUndefined();
    expect(await ledger.ingest([event(1), event(2)])).toMatchObject({ accepted: 3, duplicates: 1 });
    expect(ledger.versionVector()).toEqual({ remote: 3 });
    expect(ledger.gaps()).toEqual([]);
    expect(ledger.goal('r3')?.text).toBe('remote 3');
    // What was held is stored behind the event that closed the gap, in seq order, as if it had come in order.
    const page = ledger.eventsSince({}, 100);
    expect(page.events.map((e) => e.seq)).toEqual([1, 2, 3]);
    const again = await reopen(ledger, path);
    expect(again.eventsSince({}, 100)).toEqual(page);
    expect(again.goal('r2')?.text).toBe('remote 2');
  });

  it('refuses an event that reuses a seq with other content, records the conflict and keeps the first', async () => {
    const ledger = await start();
    const first = {
      origin: 'r',
      seq: 1,
      lamport: 1,
      ts: 1,
      type: 'goal.submitted',
      goalId: 'g',
      data: { text: 'a', coordinator: 'r' },
    };
    await ledger.ingest([first]);
    const report = await ledger.ingest([{ ...first, data: { text: 'b', coordinator: 'r' } }]);
    expect(report.conflicts).toHaveLength(1);
    expect(ledger.conflicts()[0]).toMatchObject({ origin: 'r', seq: 1 });
    expect(ledger.goal('g')!.text).toBe('a');
  });

  it('turns malformed events into rejections, never exceptions', async () => {
    const ledger = await start();
    const report = await ledger.ingest([
      null,
      'x',
      { origin: '', seq: 1 },
      { origin: 'r', seq: 0, lamport: 0, ts: 0, type: 't' },
      { origin: 'r', seq: 1, lamport: 1, ts: 1, type: 'goal.submitted', goalId: 'g', data: { nope: true } },
      { origin: 'r', seq: 2, lamport: 2, ts: 2, type: 'made.up' },
    ]);
    expect(report.invalid).toHaveLength(4);
    // Well-formed envelopes stay in the log (no gap) and the fold records why they do not count.
    expect(report.accepted).toBe(2);
    expect(ledger.rejections().map((r) => r.reason)).toEqual([
      expect.stringContaining('goal.submitted data'),
      'unknown event type "made.up"',
    ]);
    expect(ledger.goal('g')).toBeUndefined();
  });

  it('delivers every entry once, in order, from any resume position, then live', async () => {
    const ledger = await start();
    await ledger.appendMany(Array.from({ length: 2500 }, (_, i) => submit(`g${i}`, `goal ${i}`)));
    const fromStart = waitForEntries(ledger, 0, 2600);
    const resumed = waitForEntries(ledger, 2400, 200);
    await ledger.appendMany(Array.from({ length: 100 }, (_, i) => submit(`h${i}`, `later ${i}`)));
    expect((await fromStart).map((e) => e.position)).toEqual(Array.from({ length: 2600 }, (_, i) => i + 1));
    expect((await resumed).map((e) => e.position)).toEqual(Array.from({ length: 200 }, (_, i) => 2401 + i));
  });

  it('answers queries by goal, node, state and time', async () => {
    const ledger = await start();
    await ledger.appendMany(
      lifecycleInputs({ prefix: 'q', goals: 4, actionsPerGoal: 3, coordinator: 'node-a', worker: 'node-a' }),
    );
    const ids = { goalId: 'q-g0', actionId: 'extra' };
    await ledger.append({
      type: 'action.created',
      ...ids,
      data: { flowId: 'f', kind: 'exec', description: 'x', dependsOn: [] },
    });
    expect(ledger.actions({ goalId: 'q-g2' }).map((a) => a.id)).toEqual(['q-g2-a0', 'q-g2-a1', 'q-g2-a2']);
    expect(ledger.actions({ node: 'node-a' })).toHaveLength(12);
    expect(ledger.actions({ state: 'PENDING' }).map((a) => a.id)).toEqual(['extra']);
    expect(ledger.actions({ state: 'COMPLETED', goalId: 'q-g1' })).toHaveLength(3);
    const g2 = ledger.goal('q-g2')!.submittedAt;
    expect(ledger.goals({ since: g2 }).map((g) => g.id)).toEqual(['q-g2', 'q-g3']);
    expect(ledger.goals({ until: g2, limit: 1 }).map((g) => g.id)).toEqual(['q-g0']);
    expect(ledger.goals({ state: 'COMPLETED' })).toHaveLength(4);
  });

  it('searches goal text and results by words, and ids by prefix', async () => {
    const ledger = await start();
    await ledger.appendMany([
      submit('7f3a9c', 'Translate the quarterly report into French'),
      submit('b210ee', 'Summarise the French press review'),
      submit('c4d0aa', 'Compress the logs'),
    ]);
    expect(ledger.search('french').map((h) => h.id)).toEqual(['b210ee', '7f3a9c']);
    expect(ledger.search('French REPORT').map((h) => h.id)).toEqual(['7f3a9c']);
    expect(ledger.search('7f3')).toEqual([{ kind: 'goal', id: '7f3a9c', match: 'id-prefix' }]);
    expect(ledger.search('c4d0aa').map((h) => h.match)).toEqual(['id-prefix']);
    expect(ledger.search('german')).toEqual([]);
    await ledger.appendMany([
      {
        type: 'action.created',
        goalId: 'c4d0aa',
        actionId: 'z1',
        data: { flowId: 'f', kind: 'builtin', description: 'gzip', dependsOn: [] },
      },
      { type: 'action.state', goalId: 'c4d0aa', actionId: 'z1', epoch: 1, state: 'ASSIGNED', data: { node: 'node-a' } },
      { type: 'action.state', goalId: 'c4d0aa', actionId: 'z1', epoch: 1, state: 'IN_PROGRESS', data: {} },
      {
        type: 'action.output',
        goalId: 'c4d0aa',
        actionId: 'z1',
        epoch: 1,
        data: { ref: 'o', summary: 'ratio 4.2 achieved' },
      },
    ]);
    expect(ledger.search('ratio achieved')).toEqual([{ kind: 'action', id: 'z1', match: 'text' }]);
  });

  it('opens from a snapshot plus the log after it, to the same state', async () => {
    const path = tempDir();
    const ledger = await start(path, 'node-a', { snapshotEvery: 1000 });
    await ledger.appendMany(
      lifecycleInputs({ prefix: 's', goals: 200, actionsPerGoal: 2, coordinator: 'node-a', worker: 'node-a' }),
    );
    await ledger.append(submit('tail', 'after the snapshot'));
    const hash = ledger.stateHash();
    const again = await reopen(ledger, path, { snapshotEvery: 1000 });
    expect(again.openStats.snapshotPosition).toBeGreaterThan(0);
    expect(again.openStats.snapshotIgnored).toBeUndefined();
    expect(again.stateHash()).toBe(hash);
    expect(again.search('after snapshot').map((h) => h.id)).toEqual(['tail']);
    expect(again.actions({ goalId: 's-g5' })).toHaveLength(2);
  });

  it('answers sync pulls and histories from a snapshot-restored log, event for event', async () => {
    const path = tempDir();
    const ledger = await start(path, 'node-a', { snapshotEvery: 500 });
    await ledger.appendMany(
      lifecycleInputs({ prefix: 'h', goals: 60, actionsPerGoal: 2, coordinator: 'node-a', worker: 'node-b' }),
    );
    const page = ledger.eventsSince({}, 10_000);
    const history = ledger.history('h-g7-a1');
    const again = await reopen(ledger, path, { snapshotEvery: 500 });
    expect(again.openStats.snapshotPosition).toBeGreaterThan(0);
    expect(again.eventsSince({}, 10_000)).toEqual(page);
    expect(again.history('h-g7-a1')).toEqual(history);
    // New events go on at the right seq and position after the restored ones.
    const result = await again.append(submit('later', 'after reopen'));
    expect(result).toMatchObject({ ok: true, event: { seq: page.events.length + 1 } });
  });
});

describe('bad databases', () => {
  it('refuses a LevelDB that is not a ledger', async () => {
    const path = tempDir();
    const db = new Level(path);
    await db.put('user:1', 'someone else');
    await db.close();
    await expect(openLedger({ path, origin: 'a' })).rejects.toMatchObject({ code: 'foreign-database' });
  });

  it('refuses a ledger of another format version', async () => {
    const path = tempDir();
    const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.put(MARKER_KEY, eventPackr.pack({ format: 'hermes-ledger', version: 99 }));
    await db.close();
    const err = await openLedger({ path, origin: 'a' }).catch((e) => e);
    expect(err).toBeInstanceOf(LedgerOpenError);
    expect(err).toMatchObject({ code: 'unsupported-version', message: expect.stringContaining('format 99') });
  });

  it('reports a corrupt stored event by position', async () => {
    const path = tempDir();
    const ledger = await start(path);
    await ledger.appendMany([submit('g1', 'a'), submit('g2', 'b')]);
    await ledger.close();
    open.splice(0);
    const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    // Both events went to disk as one segment stored under its first position; damage its second event.
    const key = Buffer.from([0x65, 0, 0, 0, 0, 0, 0, 0, 1]);
    const segment = (await db.get(key))!;
    await db.put(key, segment.subarray(0, segment.length - 10));
    await db.close();
    await expect(openLedger({ path, origin: 'a' })).rejects.toMatchObject({
      code: 'corrupt',
      message: expect.stringContaining('position 2'),
    });
  });

  it('ignores and drops a snapshot an earlier build kept inside LevelDB', async () => {
    const path = tempDir();
    const ledger = await start(path, 'node-a', { snapshotEvery: 0 });
    await ledger.appendMany(Array.from({ length: 120 }, (_, i) => submit(`g${i}`, `goal ${i}`)));
    const hash = ledger.stateHash();
    await ledger.close();
    open.splice(0);
    const legacyKeys = [
      Buffer.from('\x00hermes-ledger/snapshot', 'latin1'),
      Buffer.from([0x73, 0, 0, 0, 0, 0, 0, 0, 50]),
    ];
    const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    for (const key of legacyKeys) await db.put(key, Buffer.from('garbage'));
    await db.close();
    const again = await start(path);
    expect(again.openStats).toMatchObject({ snapshotPosition: 0 });
    expect(again.stateHash()).toBe(hash);
    await again.close();
    open.splice(0);
    const after = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    expect(await after.getMany(legacyKeys)).toEqual([undefined, undefined]);
    await after.close();
  });

  it('reports a damaged event under a snapshot by position when it is read, and keeps running', async () => {
    const path = tempDir();
    const ledger = await start(path, 'node-a', { snapshotEvery: 100 });
    await ledger.appendMany(Array.from({ length: 120 }, (_, i) => submit(`g${i}`, `goal ${i}`)));
    await ledger.close();
    open.splice(0);
    const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    // One segment holds all 120 events; overwrite the second event's first bytes (same length, so the layout fits).
    const key = Buffer.from([0x65, 0, 0, 0, 0, 0, 0, 0, 1]);
    const segment = Buffer.from((await db.get(key))!);
    const first = eventPackr.pack(eventPackr.unpackMultiple(segment)![0]).length;
    segment.fill(0xc1, first, first + 4); // 0xc1 is never valid msgpack
    await db.put(key, segment);
    await db.close();
    const again = await start(path);
    expect(again.openStats.snapshotPosition).toBeGreaterThanOrEqual(100);
    expect(() => again.eventsSince({}, 1000)).toThrow(/position 2 cannot be decoded/);
    expect(again.goal('g50')?.text).toBe('goal 50');
    expect((await again.append(submit('g-new', 'still writable'))).ok).toBe(true);
  });

  it('reports a database held by another process as locked', async () => {
    const path = tempDir();
    await start(path);
    await expect(openLedger({ path, origin: 'b' })).rejects.toMatchObject({ code: 'locked' });
  });
});
