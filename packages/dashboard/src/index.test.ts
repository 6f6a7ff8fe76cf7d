import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_HEADERS, dashboardAssets, dashboardRoot } from './index.js';

describe('dashboard assets', () => {
  it('serves the page, every module it imports, its stylesheet and icon', () => {
    const assets = new Map(dashboardAssets().map((a) => [a.path, a]));
    const page = assets.get('/')!.body.toString();
    for (const ref of page.matchAll(/(?:src|href)="([^"]+)"/g)) expect(assets.has(ref[1]!), ref[1]).toBe(true);
    for (const asset of assets.values()) {
      if (!asset.path.endsWith('.js')) continue;
      for (const m of asset.body.toString().matchAll(/from '\.\/([^']+)'/g)) {
        expect(assets.has(`/dashboard/${m[1]}`), `${asset.path} imports ${m[1]}`).toBe(true);
      }
    }
  });

  it('has no inline script or style, and a CSP that allows none', () => {
    const page = dashboardAssets()
      .find((a) => a.path === '/')!
      .body.toString();
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(page).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    const csp = DASHBOARD_HEADERS['content-security-policy']!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
  });

  it('never turns strings into HTML: no innerHTML, outerHTML, insertAdjacentHTML or document.write', () => {
    const dir = join(dashboardRoot(), 'web');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const code = readFileSync(join(dir, file), 'utf8');
      expect(code, file).not.toMatch(/\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(/);
    }
  });
});
