import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ledger } from '../ledger.js';

/**
 * The ledger directories and open ledgers of one test file. Push what a test opens onto `open`; `cleanup`
 * (after each test) closes those still open and removes every directory made.
 */
export function tempLedgers(prefix: string) {
  const dirs: string[] = [];
  const open: Ledger[] = [];
  return {
    open,
    tempDir(): string {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    async cleanup(): Promise<void> {
      await Promise.all(open.splice(0).map((l) => l.close()));
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
