import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * One folder for every temporary dir the run's tests make (see tempDir in support/daemons.ts), removed when the
 * run ends: the test workers are stopped without an exit event, and each run used to leave ~1 GB in /tmp.
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'hermes-tests-'));
  process.env.HERMES_TEST_ROOT = root;
  return () => rmSync(root, { recursive: true, force: true });
}
