import { type Browser, type Page, chromium as playwright } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureChromium } from './setup/chromium.js';
import { type DaemonProcess, startDaemonProcess, startMesh, stopDaemon, type TestMesh } from './support/daemons.js';
import { waitFor } from './support/wait.js';

// The dashboard as a user sees it: real processes (a coordinator and hermesd workers on loopback) and Debian's
// chromium, installed on first use where we are root (CI), else the suite is skipped with the reason.
const browserFound = await ensureChromium();
if (browserFound.skip) console.warn(`dashboard browser test skipped: ${browserFound.skip}`);

const EVIL = '<img src=x onerror=alert(1)>';
const UI_MS = 20_000;

interface GoalView {
  id: string;
  state: string;
  actions: Array<{ planId: string; state: string }>;
}

describe.skipIf(!browserFound.path)('dashboard in headless chromium', () => {
  let mesh: TestMesh;
  let evil: DaemonProcess;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mesh = await startMesh(1, ['--slots', '2']);
    evil = await startDaemonProcess({
      name: EVIL,
      // The mesh key startMesh made, as the coordinator was started with it.
      meshKey: mesh.coord.proc.spawnargs[mesh.coord.proc.spawnargs.indexOf('--mesh-key') + 1]!,
      bootstrap: [mesh.coord.addrs[0]!],
      args: ['--log-level', 'warn', '--slots', '2'],
    });
    browser = await playwright.launch({ executablePath: browserFound.path!, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
    await page.goto(mesh.coord.api);
    // Set once: if the page reloaded itself, this would be gone.
    await page.evaluate(() => {
      (globalThis as unknown as { notReloaded: boolean }).notReloaded = true;
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all([mesh?.stop(), evil && stopDaemon(evil)]);
  });

  const goal = (id: string) => mesh.coord.get<GoalView>(`/v1/goals/${id}`);
  const submit = async (body: unknown) => (await mesh.coord.post<{ goalId: string }>('/v1/goals', body)).goalId;

  it('serves the page and its assets with a strict Content-Security-Policy', async () => {
    for (const path of ['/', '/dashboard/app.js', '/dashboard/style.css']) {
      const res = await fetch(`${mesh.coord.api}${path}`);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect((await fetch(`${mesh.coord.api}/dashboard/app.js`)).headers.get('content-type')).toMatch(/javascript/);
  });

  it('lists every node of the mesh, live, and shows a hostile node name as text', async () => {
    const rows = page.locator('#nodes-body tr[data-node]');
    await waitFor(async () => (await rows.count()) === 3, 'three nodes on the page', UI_MS);
    for (const d of [mesh.coord, ...mesh.workers, evil]) {
      const row = page.locator(`#nodes-body tr[data-node="${d.peerId}"]`);
      await row.waitFor({ timeout: UI_MS });
      expect(await row.locator('.node-name').textContent()).toBe(d.name);
      await page.locator(`#nodes-body tr[data-node="${d.peerId}"][data-state="alive"]`).waitFor({ timeout: UI_MS });
    }
    expect(await page.locator('#nodes-body').textContent()).toContain(EVIL);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(dialogs).toEqual([]);
    await expect(page.locator('#connection').getAttribute('data-status')).resolves.toBe('live');
  });

  it('shows a submitted plan and its actions moving to COMPLETED without a reload', async () => {
    const id = await submit({
      goal: 'dashboard: wait, then hash and finish',
      flows: [{ id: 'main', persona: 'Checker' }],
      actions: [
        { id: 'wait', flowId: 'main', kind: 'builtin', params: { name: 'sleep', ms: 2_000 }, dependsOn: [] },
        {
          id: 'hash',
          flowId: 'main',
          kind: 'builtin',
          params: { name: 'sha256', input: { text: 'hermes' } },
          dependsOn: ['wait'],
        },
        { id: 'done', flowId: 'main', kind: 'builtin', params: { name: 'noop' }, dependsOn: ['hash'] },
      ],
    });
    const row = page.locator(`#goals-body tr[data-goal="${id}"]`);
    await row.waitFor({ timeout: UI_MS });
    expect(await page.locator('#goals-body tr[data-goal]').first().getAttribute('data-goal')).toBe(id);
    await row.click();
    // Seen while it runs, then done: the stream drives the page.
    await page
      .locator('#detail tr[data-action="wait"]:is([data-state="ASSIGNED"], [data-state="IN_PROGRESS"])')
      .waitFor({ timeout: UI_MS });
    expect(await page.locator('#detail tr[data-action="hash"]').getAttribute('data-state')).toBe('PENDING');
    for (const action of ['wait', 'hash', 'done']) {
      await page.locator(`#detail tr[data-action="${action}"][data-state="COMPLETED"]`).waitFor({ timeout: UI_MS });
    }
    await page.locator(`#goals-body tr[data-goal="${id}"][data-state="COMPLETED"]`).waitFor({ timeout: UI_MS });
    expect(await row.locator('.progress-cell').textContent()).toBe('3/3');
    const hashRow = page.locator('#detail tr[data-action="hash"]');
    const node = await hashRow.locator('td').nth(3).textContent();
    expect([mesh.coord.name, mesh.workers[0]!.name, EVIL]).toContain(node);
    expect((await goal(id)).state).toBe('COMPLETED');
    await page.screenshot({ path: '/tmp/hermes-dashboard.png', fullPage: true });
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  });

  it('Cancel on a running goal ends it: CANCELLED on the page and in the API', async () => {
    const id = await submit({
      goal: 'dashboard: a long sleep to cancel',
      flows: [{ id: 'main', persona: 'Sleeper' }],
      actions: [
        {
          id: 'long',
          flowId: 'main',
          kind: 'builtin',
          params: { name: 'sleep', ms: 120_000 },
          dependsOn: [],
          timeoutMs: 180_000,
        },
      ],
    });
    await page.locator(`#goals-body tr[data-goal="${id}"]`).click({ timeout: UI_MS });
    await page.locator('#detail tr[data-action="long"][data-state="IN_PROGRESS"]').waitFor({ timeout: UI_MS });
    await page.locator('#cancel-goal').click();
    await page.locator(`#detail .detail-head[data-state="CANCELLED"]`).waitFor({ timeout: UI_MS });
    await page.locator(`#goals-body tr[data-goal="${id}"][data-state="CANCELLED"]`).waitFor({ timeout: UI_MS });
    expect((await goal(id)).state).toBe('CANCELLED');
    expect(await page.locator('#cancel-goal').count()).toBe(0);
  });

  it('an action waiting in FALLBACK_REQUESTED gets Approve and Abort; Abort fails the goal', async () => {
    const id = await submit({
      goal: 'dashboard: an action that cannot succeed',
      flows: [{ id: 'main', persona: 'Unlucky' }],
      actions: [
        {
          id: 'missing',
          flowId: 'main',
          kind: 'builtin',
          params: { name: 'sha256', input: { file: 'no/such/file.txt' } },
          dependsOn: [],
          retries: 0,
        },
      ],
    });
    await page.locator(`#goals-body tr[data-goal="${id}"]`).click({ timeout: UI_MS });
    const waiting = page.locator('#detail tr[data-action="missing"][data-state="FALLBACK_REQUESTED"]');
    await waiting.waitFor({ timeout: UI_MS });
    expect(await waiting.locator('button[data-decide="retry"]').count()).toBe(1);
    await waiting.locator('button[data-decide="abort"]').click();
    await page.locator(`#goals-body tr[data-goal="${id}"][data-state="FAILED"]`).waitFor({ timeout: UI_MS });
    expect((await goal(id)).state).toBe('FAILED');
    expect(pageErrors).toEqual([]);
  });
});
