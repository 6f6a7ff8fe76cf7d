import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { promisify } from 'node:util';

/** Where Debian's chromium package puts the browser; HERMES_CHROMIUM names another one. */
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const INSTALL_TIMEOUT_MS = 8 * 60_000;

export type Chromium = { path: string; skip?: undefined } | { path?: undefined; skip: string };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function found(): string | undefined {
  const wanted = process.env.HERMES_CHROMIUM;
  if (wanted) return executable(wanted) ? wanted : undefined;
  return CANDIDATES.find(executable);
}

const log = (line: string) => process.stderr.write(`[chromium] ${line}\n`);

/**
 * The browser for the dashboard test: the installed one, or Debian's `chromium` installed with apt-get when we are
 * root on a machine that has it (CI starts fresh). Never throws: when there is no browser, `skip` says why.
 */
export async function ensureChromium(): Promise<Chromium> {
  const present = found();
  if (present) return { path: present };
  if (process.env.HERMES_CHROMIUM) return { skip: `HERMES_CHROMIUM=${process.env.HERMES_CHROMIUM} is not executable` };
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || !executable('/usr/bin/apt-get')) {
    return {
      skip: 'no chromium at /usr/bin/chromium and cannot install it (needs root and apt-get): apt-get install chromium',
    };
  }
  const started = Date.now();
  log('not installed: apt-get update && apt-get install -y --no-install-recommends chromium (can take minutes)');
  const run = promisify(execFile);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const deadline = started + INSTALL_TIMEOUT_MS;
  try {
    await run('apt-get', ['update'], { env, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
    log(`apt-get update done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await run('apt-get', ['install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=120', 'chromium'], {
      env,
      timeout: Math.max(1_000, deadline - Date.now()),
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { killed?: boolean; stderr?: string; message: string };
    const why = e.killed
      ? `timed out after ${INSTALL_TIMEOUT_MS / 1000} s`
      : (e.stderr || e.message).trim().slice(-500);
    log(`install failed: ${why}`);
    return { skip: `chromium is not installed and apt-get could not install it: ${why}` };
  }
  const path = found();
  log(path ? `installed ${path} in ${((Date.now() - started) / 1000).toFixed(1)} s` : 'apt-get ran but no chromium');
  return path ? { path } : { skip: 'apt-get install chromium succeeded but no chromium binary was found' };
}
