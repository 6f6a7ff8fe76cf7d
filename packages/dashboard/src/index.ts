import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file of the dashboard, read once: where the server mounts it and what it sends. */
export interface DashboardAsset {
  /** URL path: `/` for the page, `/dashboard/<file>` for the rest. */
  path: string;
  contentType: string;
  body: Buffer;
}

/**
 * Headers for every dashboard response. The CSP allows only this origin's scripts, styles and fetches: no inline
 * script or style, no eval, no frames, so mesh data shown on the page (node names, goal text) cannot run as code.
 */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** The package's root directory (this file runs from src/ under tests and from dist/src/ when built). */
export function dashboardRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('dashboard: package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

const MODULES = ['app.js', 'api.js', 'dom.js', 'format.js'];

/** The page, its ES modules (built by `tsc -b` into dist/web), its stylesheet and icon. */
export function dashboardAssets(): DashboardAsset[] {
  const root = dashboardRoot();
  const read = (path: string) => readFileSync(join(root, path));
  return [
    { path: '/', contentType: 'text/html; charset=utf-8', body: read('web/index.html') },
    { path: '/dashboard/style.css', contentType: 'text/css; charset=utf-8', body: read('web/style.css') },
    { path: '/dashboard/icon.svg', contentType: 'image/svg+xml', body: read('web/icon.svg') },
    ...MODULES.map((file) => ({
      path: `/dashboard/${file}`,
      contentType: 'text/javascript; charset=utf-8',
      body: read(`dist/web/${file}`),
    })),
  ];
}
