import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLedger } from '../packages/ledger/src/index.js';
import { seededRandom } from '../packages/ledger/src/testing/simulate.js';

const WRITER = join(import.meta.dirname, 'fixtures', 'ledger-crash-writer.ts');
const KILLS = 50;
const dir = mkdtempSync(join(tmpdir(), 'ledger-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  /** Events the writer found on open. */
  heldOnOpen: number;
  snapshotIgnored: string;
  acked: number[];
}

/**
 * Starts the writer, lets it append for `ms` after it opened (or, with `afterFirstAck`, after its first
 * acknowledged append: on a loaded machine the first write can take longer than the whole window), then kills it
 * with SIGKILL.
 */
function runAndKill(path: string, sync: boolean, ms: number, afterFirstAck: boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      ['--conditions', 'source', '--import', 'tsx', WRITER, path, sync ? 'sync' : 'nosync'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const run: Run = { heldOnOpen: -1, snapshotIgnored: '', acked: [] };
    let buffered = '';
    let stderr = '';
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer never opened the ledger: ${stderr}`));
    }, 15_000);
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdout!.on('data', (chunk) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [word, a, , c] = line.split(' ');
        if (word === 'ack') {
          run.acked.push(Number(a));
          if (afterFirstAck && run.acked.length === 1) setTimeout(() => child.kill('SIGKILL'), ms);
        }
        if (word === 'open') {
          run.heldOnOpen = Number(a);
          run.snapshotIgnored = c!;
          clearTimeout(deadline);
          // A writer that never acknowledges is killed all the same (then the checks below fail).
          setTimeout(() => child.kill('SIGKILL'), afterFirstAck ? 10_000 : ms);
        }
      }
    });
    child.on('exit', (_code, signal) => {
      clearTimeout(deadline);
      if (run.heldOnOpen < 0) reject(new Error(`writer exited (${signal}) before opening: ${stderr}`));
      else if (signal !== 'SIGKILL') reject(new Error(`writer stopped by itself: ${stderr}`));
      else resolve(run);
    });
  });
}

describe('crash consistency', () => {
  // Fifty process starts (each compiles the writer with tsx): about 70 s in a quiet CI run, 90 s on a loaded box.
  it(`keeps every acknowledged append across ${KILLS} kill -9s`, { timeout: 240_000 }, async () => {
    const path = join(dir, 'ledger');
    const random = seededRandom(Date.now() & 0xffff);
    let highestAck = 0;
    let killedWithUnackedWork = 0;
    for (let i = 0; i < KILLS; i++) {
      // Two runs in three are killed mid-work (after an ack); the third may die before its first write is done.
      const run = await runAndKill(path, i % 3 === 0, Math.floor(random() * 120), i % 3 !== 2);
      // Reopen after the previous kill: it must hold everything acknowledged before it.
      expect(run.heldOnOpen).toBeGreaterThanOrEqual(highestAck);
      expect(run.snapshotIgnored).toBe('-');
      if (run.acked.length > 0) {
        expect(run.acked[0]).toBe(run.heldOnOpen + 1);
        highestAck = run.acked[run.acked.length - 1]!;
        killedWithUnackedWork++;
      }
    }
    expect(killedWithUnackedWork).toBeGreaterThan(KILLS / 2);
    const ledger = await openLedger({ path, origin: 'checker' });
    try {
      const held = ledger.versionVector()['crash-writer'] ?? 0;
      expect(held).toBeGreaterThanOrEqual(highestAck);
      for (let seq = 1; seq <= held; seq++) expect(ledger.goal(`g${seq}`)?.text).toBe(`goal ${seq}`);
      expect(ledger.rejections()).toEqual([]);
    } finally {
      await ledger.close();
    }
  });
});
