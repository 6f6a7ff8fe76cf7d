import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/wait.js';
import { GroupCommit, openDatabase, readAllSegments } from './storage.js';
import { tempLedgers } from './testing/temp-ledgers.js';

const { tempDir, cleanup } = tempLedgers('ledger-storage-');
const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
  await cleanup();
});

async function committer(idleReleaseMs: number) {
  const db = await openDatabase(tempDir());
  const commit = new GroupCommit(db, false, () => {}, idleReleaseMs);
  closing.push(async () => {
    commit.close();
    await db.close();
  });
  return { db, commit };
}

/** Queues `count` events of `bytes` each from `first` on, and waits until they are written. */
async function burst(commit: GroupCommit, first: number, count: number, bytes: number) {
  commit.expect(count);
  for (let i = 0; i < count; i++) commit.queueEncoded(first + i, Buffer.alloc(bytes, i % 251));
  expect(await commit.write()).toBeUndefined();
}

describe('GroupCommit segment buffers', () => {
  it('lets the large buffers of a burst go once writes stop, and keeps them while writes go on', async () => {
    const { db, commit } = await committer(1_000);
    await burst(commit, 1, 400, 1024); // ~400 KiB in one segment
    expect(commit.spareBytes()).toBeGreaterThan(256 * 1024);
    // Busy: a small write every 100 ms keeps the idle time from running out, and the big buffer stays.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await burst(commit, 401 + i, 1, 64);
    }
    expect(commit.spareBytes()).toBeGreaterThan(256 * 1024);
    // Idle: after the quiet time only small buffers are left.
    await waitFor(() => commit.spareBytes() <= 64 * 1024, 'the large spare buffers to be released', 5_000);
    // Nothing written was lost or changed by the release.
    await burst(commit, 407, 2, 100);
    const stored = await readAllSegments(db);
    const total = stored.reduce((n, [, bytes]) => n + bytes.length, 0);
    expect(total).toBe(400 * 1024 + 6 * 64 + 2 * 100);
  });
});
