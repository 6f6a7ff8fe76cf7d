import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LedgerEvent } from '@hermes-mesh/protocol';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventInput } from './events.js';
import { type Ledger, type LedgerEntry, openLedger } from './ledger.js';
import { eventKey, SNAPSHOT_FILE } from './storage.js';
import { tempLedgers } from './testing/temp-ledgers.js';
import { lifecycleInputs } from './testing/workload.js';

const { open, tempDir, cleanup } = tempLedgers('ledger-snap-');
afterEach(cleanup);

let clock = 1_000;
const now = () => clock++;

interface Started {
  ledger: Ledger;
  warnings: string[];
}

async function start(path: string, snapshotEvery: number, origin = 'node-a', snapshotQuietMs = 0): Promise<Started> {
  const warnings: string[] = [];
  const ledger = await openLedger({
    path,
    origin,
    now,
    snapshotEvery,
    snapshotQuietMs,
    warn: (m) => warnings.push(m),
  });
  open.push(ledger);
  return { ledger, warnings };
}

async function close(ledger: Ledger): Promise<void> {
  await ledger.close();
  open.splice(open.indexOf(ledger), 1);
}

const work = (prefix: string, goals: number, worker = 'node-a') =>
  lifecycleInputs({ prefix, goals, actionsPerGoal: 2, coordinator: 'node-a', worker });

/** Appends in several calls, so the log is stored as several segments. */
async function fill(ledger: Ledger, inputs: EventInput[], chunk = 100): Promise<void> {
  for (let i = 0; i < inputs.length; i += chunk) {
    const results = await ledger.appendMany(inputs.slice(i, i + chunk));
    expect(results.every((r) => r.ok)).toBe(true);
  }
}

function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => {
    settled = true;
  });
  return new Promise((resolve) => queueMicrotask(() => queueMicrotask(() => resolve(settled))));
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A late event of another origin that sorts before an action's last events: folding it re-folds the action. */
const lateEvent = (actionId: string, goalId: string): LedgerEvent => ({
  origin: 'node-b',
  seq: 1,
  lamport: 1,
  ts: 5,
  type: 'action.state',
  goalId,
  actionId,
  epoch: 1,
  state: 'IN_PROGRESS',
  data: {},
});

describe('open from a snapshot', () => {
  it('answers at once without reading the events under the snapshot, and serves them once read', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 1000);
    await fill(ledger, work('o', 60));
    const page = ledger.eventsSince({}, 10_000);
    const history = ledger.history('o-g7-a1');
    const hash = ledger.stateHash();
    await close(ledger);

    const { ledger: again, warnings } = await start(path, 1000);
    expect(again.openStats.snapshotPosition).toBe(page.events.length);
    expect(await isSettled(again.loaded())).toBe(false);
    // The fold and queries are there before the covered events are read...
    expect(again.stateHash()).toBe(hash);
    expect(again.actions({ goalId: 'o-g7' })).toHaveLength(2);
    // ...a sync page stops short of the events not read yet (the requester asks again)...
    const early = again.eventsSince({}, 10_000);
    expect(early.more).toBe(true);
    expect(early.events.length).toBeLessThan(page.events.length);
    expect(() => again.history('o-g7-a1')).toThrow(/still being read/);
    // ...and once they are, everything is served event for event.
    await again.loaded();
    expect(again.eventsSince({}, 10_000)).toEqual(page);
    expect(again.history('o-g7-a1')).toEqual(history);
    expect(warnings).toEqual([]);

    // The same state as a full replay of the log.
    await close(again);
    rmSync(join(path, SNAPSHOT_FILE));
    const { ledger: replayed } = await start(path, 0);
    expect(replayed.openStats.snapshotPosition).toBe(0);
    expect(replayed.stateHash()).toBe(hash);
  });

  it('lets writes made while the covered events load wait for them, in order, and folds them the same', async () => {
    const path = tempDir();
    const source = await start(tempDir(), 0, 'node-a');
    await fill(source.ledger, work('w', 40));
    const events = source.ledger.eventsSince({}, 10_000).events;
    const reference = (await start(tempDir(), 0, 'node-c')).ledger;
    await reference.ingest(events);

    const { ledger } = await start(path, 100, 'node-c');
    await ledger.ingest(events);
    await close(ledger);
    const { ledger: again } = await start(path, 100, 'node-c');
    expect(again.openStats.snapshotPosition).toBe(events.length);
    // A late event re-folds an action restored from the snapshot; appends go on after it in call order.
    const late = lateEvent('w-g3-a0', 'w-g3');
    const ingested = again.ingest([late]);
    const first = again.append({ type: 'goal.submitted', goalId: 'x1', data: { text: 'one', coordinator: 'node-c' } });
    const second = again.append({ type: 'goal.submitted', goalId: 'x2', data: { text: 'two', coordinator: 'node-c' } });
    expect((await ingested).accepted).toBe(1);
    const [r1, r2] = await Promise.all([first, second]);
    expect(r1).toMatchObject({ ok: true, event: { seq: 1 } });
    expect(r2).toMatchObject({ ok: true, event: { seq: 2 } });
    await reference.ingest([late]);
    expect(again.history('w-g3-a0')).toEqual(reference.history('w-g3-a0'));
    expect(again.action('w-g3-a0')).toEqual(reference.action('w-g3-a0'));
  });

  it('folds events after the snapshot that touch entities it holds (reading their events first)', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 1000);
    await fill(ledger, work('t', 60));
    await close(ledger);
    const { ledger: next } = await start(path, 1000);
    // Fewer events than a clean close snapshots for: they stay after the snapshot.
    await next.ingest([lateEvent('t-g5-a1', 't-g5')]);
    await next.append({ type: 'goal.cancelled', goalId: 't-g9', data: { reason: 'late' } });
    const hash = next.stateHash();
    const history = next.history('t-g5-a1');
    const position = next.openStats.snapshotPosition;
    await close(next);

    const { ledger: again } = await start(path, 1000);
    expect(again.openStats.snapshotPosition).toBe(position);
    expect(again.openStats.events).toBe(position + 2);
    expect(again.stateHash()).toBe(hash);
    expect(again.history('t-g5-a1')).toEqual(history);
  });

  it('keeps the fold through snapshots of a ledger opened from a snapshot, as a full replay folds it', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 100);
    await fill(ledger, work('p', 20));
    // Actions named under a goal not submitted yet (their coordinator is unknown until it is).
    const early = (n: number): LedgerEvent => ({
      origin: 'node-c',
      seq: n,
      lamport: 10_000 + n,
      ts: 7,
      type: 'action.created',
      goalId: 'late-goal',
      actionId: `late-a${n}`,
      data: { flowId: 'main', kind: 'builtin', description: `early ${n}`, dependsOn: [] },
    });
    await ledger.ingest([early(1), early(2)]);
    await close(ledger);
    for (let round = 0; round < 2; round++) {
      const { ledger: again } = await start(path, 100);
      expect(again.openStats.snapshotPosition).toBe(again.openStats.events);
      if (round === 0) {
        await again.append({
          type: 'goal.submitted',
          goalId: 'late-goal',
          data: { text: 'late', coordinator: 'node-c' },
        });
        await fill(again, work('q', 10));
        await again.ingest([lateEvent('p-g2-a0', 'p-g2')]);
      }
      const hash = again.stateHash();
      const actions = again.actions({ goalId: 'late-goal' });
      await close(again);
      const copy = tempDir();
      cpSync(path, copy, { recursive: true });
      rmSync(join(copy, SNAPSHOT_FILE));
      const { ledger: replayed } = await start(copy, 0);
      expect(replayed.stateHash()).toBe(hash);
      expect(replayed.actions({ goalId: 'late-goal' })).toEqual(actions);
      expect(actions.map((a) => a.id).sort()).toEqual(['late-a1', 'late-a2']);
    }
  });

  it('delivers every entry once, in order, to a subscriber from position 0 right after the open', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 1000);
    await fill(ledger, work('s', 30));
    const all = ledger.eventsSince({}, 10_000).events;
    await close(ledger);
    const { ledger: again } = await start(path, 1000);
    const seen = await new Promise<LedgerEntry[]>((resolve) => {
      const got: LedgerEntry[] = [];
      const stop = again.subscribe(0, (entries) => {
        got.push(...entries);
        if (got.length >= all.length) {
          stop();
          resolve(got);
        }
      });
    });
    expect(seen.map((e) => e.position)).toEqual(all.map((_, i) => i + 1));
    expect(seen.map((e) => e.event)).toEqual(all);
  });
});

describe('snapshot cadence', () => {
  it('writes a snapshot every snapshotEvery events while running', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 200);
    await fill(ledger, work('c', 12)); // 12 x 14 = 168 events: none yet
    expect(existsSync(join(path, SNAPSHOT_FILE))).toBe(false);
    await fill(ledger, work('d', 4));
    await until(() => existsSync(join(path, SNAPSHOT_FILE)));
  });

  it('waits for a pause in the writes to take a due snapshot, or takes it three times snapshotEvery behind', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 200, 'node-a', 500);
    // Due after 210 events, but each write within 500 ms of the last moves it on.
    for (let i = 0; i < 6; i++) {
      await fill(ledger, work(`q${i}`, 5)); // 70 events each
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(existsSync(join(path, SNAPSHOT_FILE))).toBe(false);
    await until(() => existsSync(join(path, SNAPSHOT_FILE)));
    // A ledger that never pauses still gets one at 3 x snapshotEvery.
    const busy = tempDir();
    const { ledger: nonstop } = await start(busy, 200, 'node-a', 60_000);
    await fill(nonstop, work('r', 30)); // 420 events: due, not yet taken
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(join(busy, SNAPSHOT_FILE))).toBe(false);
    await fill(nonstop, work('s', 20)); // 700 events in all
    await until(() => existsSync(join(busy, SNAPSHOT_FILE)));
  });

  it('leaves a snapshot at the end of the log on a clean close', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 1000);
    await fill(ledger, work('e', 20)); // 280 events, fewer than snapshotEvery
    await close(ledger);
    const { ledger: again } = await start(path, 1000);
    expect(again.openStats.snapshotPosition).toBe(280);
  });

  it('snapshots a log it had to replay in full soon after opening, not only after snapshotEvery more', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 0);
    await fill(ledger, work('f', 20));
    await close(ledger);
    const { ledger: again } = await start(path, 100);
    expect(again.openStats.snapshotPosition).toBe(0);
    await until(() => existsSync(join(path, SNAPSHOT_FILE)));
  });
});

describe('unusable snapshots', () => {
  it('falls back to a full replay, with a warning, when the snapshot is damaged', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 1000);
    await fill(ledger, work('g', 20));
    const hash = ledger.stateHash();
    await close(ledger);
    const file = join(path, SNAPSHOT_FILE);
    const bytes = readFileSync(file);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    writeFileSync(file, bytes);
    const { ledger: again, warnings } = await start(path, 1000);
    expect(again.openStats).toMatchObject({ snapshotPosition: 0, snapshotIgnored: expect.stringMatching(/digest/) });
    expect(warnings).toEqual([expect.stringMatching(/snapshot not used .*digest.*rebuilt from the whole log/)]);
    expect(again.stateHash()).toBe(hash);
  });

  it('never uses a snapshot of another ledger', async () => {
    const a = tempDir();
    const b = tempDir();
    const { ledger: la } = await start(a, 1000);
    await fill(la, work('h', 20));
    await close(la);
    const { ledger: lb } = await start(b, 1000);
    await fill(lb, work('i', 20));
    const hash = lb.stateHash();
    await close(lb);
    cpSync(join(a, SNAPSHOT_FILE), join(b, SNAPSHOT_FILE));
    const { ledger: again, warnings } = await start(b, 1000);
    expect(again.openStats.snapshotIgnored).toBe('snapshot of another ledger');
    expect(warnings).toHaveLength(1);
    expect(again.stateHash()).toBe(hash);
  });

  it('falls back to a full replay when the snapshot covers events the log lacks', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 1000);
    await fill(ledger, work('j', 20));
    await close(ledger);
    const older = tempDir();
    cpSync(path, older, { recursive: true });
    const { ledger: later } = await start(path, 1000);
    await fill(later, work('k', 20));
    await close(later);
    // The older copy of the log, with the newer snapshot (as if the log's last writes were lost).
    const { ledger: check } = await start(older, 0);
    const hash = check.stateHash();
    await close(check);
    cpSync(join(path, SNAPSHOT_FILE), join(older, SNAPSHOT_FILE));
    const { ledger: again, warnings } = await start(older, 0);
    expect(again.openStats).toMatchObject({ snapshotPosition: 0, snapshotIgnored: expect.stringMatching(/match/) });
    expect(warnings).toHaveLength(1);
    expect(again.stateHash()).toBe(hash);
  });

  it('reports a stored segment under the snapshot that does not fit it when it is read, and keeps running', async () => {
    const path = tempDir();
    const { ledger } = await start(path, 1000);
    await fill(ledger, work('m', 30));
    const hash = ledger.stateHash();
    await close(ledger);
    const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const segment = (await db.get(eventKey(1)))!;
    await db.put(eventKey(1), segment.subarray(0, segment.length - 3));
    await db.close();
    const { ledger: again, warnings } = await start(path, 1000);
    expect(again.stateHash()).toBe(hash);
    await again.loaded();
    expect(warnings).toEqual([expect.stringMatching(/does not fit .*restore from a replica/)]);
    expect(() => again.eventsSince({}, 10_000)).toThrow(/position 1 cannot be read/);
    // A subscription over the unreadable events is told nothing it cannot read, and the ledger keeps running.
    const delivered: LedgerEntry[] = [];
    again.subscribe(0, (entries) => delivered.push(...entries));
    await until(() => warnings.length === 2);
    expect(warnings[1]).toMatch(/subscription stops at position 1: .*cannot be read/);
    expect(delivered).toEqual([]);
    expect(again.goal('m-g3')?.state).toBe('COMPLETED');
    // An event that would fold over the unreadable events is refused, saying why; others go on.
    expect(await again.append({ type: 'goal.cancelled', goalId: 'm-g3', data: { reason: 'late' } })).toEqual({
      ok: false,
      error: expect.stringMatching(/cannot fold goal.cancelled: .*does not fit/),
    });
    const fresh: EventInput = {
      type: 'goal.submitted',
      goalId: 'm-new',
      data: { text: 'still writable', coordinator: 'node-a' },
    };
    expect((await again.append(fresh)).ok).toBe(true);
    expect(again.goal('m-g3')?.state).toBe('COMPLETED');
  });
});
