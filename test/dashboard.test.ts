import { createServer } from 'node:net';
import { type Browser, type Page, chromium as playwright } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureChromium } from './setup/chromium.js';
import {
  type DaemonProcess,
  startDaemonProcess,
  startMesh,
  stopDaemon,
  type TestMesh,
  tempDir,
} from './support/daemons.js';
import { waitFor } from './support/wait.js';

// The dashboard as a user sees it: real processes (a coordinator and hermesd workers on loopback) and Debian's
// chromium, installed on first use where we are root (CI), else the suite is skipped with the reason.
const browserFound = await ensureChromium();
if (browserFound.skip) console.warn(`dashboard browser test skipped: ${browserFound.skip}`);

const EVIL = '<img src=x onerror=alert(1)>';
const UI_MS = 20_000;
/** A test waits for a few UI conditions in a row, each up to UI_MS, on 2 cores shared with other test files. */
const TEST_MS = 60_000;

interface GoalView {
  id: string;
  state: string;
  actions: Array<{ planId: string; state: string }>;
}

describe.skipIf(!browserFound.path)('dashboard in headless chromium', { timeout: TEST_MS }, () => {
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
    // A goal not on screen shows its progress from the goal list alone (its actions are not read).
    const other = await submit({
      goal: 'dashboard: two quick ones',
      flows: [{ id: 'main', persona: 'Checker' }],
      actions: ['one', 'two'].map((a) => ({
        id: a,
        flowId: 'main',
        kind: 'builtin',
        params: { name: 'noop' },
        dependsOn: [],
      })),
    });
    await page
      .locator(`#goals-body tr[data-goal="${other}"][data-state="COMPLETED"] .progress-cell:text-is("2/2")`)
      .waitFor({ timeout: UI_MS });
    const listed = await mesh.coord.get<{ goals: Array<{ id: string; progress: unknown }> }>('/v1/goals');
    expect(listed.goals.find((g) => g.id === other)?.progress).toEqual({
      total: 2,
      completed: 2,
      byState: { COMPLETED: 2 },
    });
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

/** A TCP port free on loopback right now (for a coordinator that must come back on the same address). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.skipIf(!browserFound.path)('dashboard with a token, over a restart', { timeout: TEST_MS }, () => {
  const TOKEN = 'dashboard-test-token';
  let coord: DaemonProcess;
  let browser: Browser;
  let page: Page;
  let args: string[];
  const meshKey = `${tempDir()}/mesh.key`;

  const start = (dataDir?: string) =>
    startDaemonProcess({
      name: 'coord',
      coordinator: true,
      meshKey,
      ...(dataDir ? { dataDir } : {}),
      args,
      env: { HERMES_API_TOKEN: TOKEN },
    });

  beforeAll(async () => {
    // No worker: goals stay PENDING, which is enough to see them and their events. The API port survives a restart.
    args = ['--log-level', 'warn', '--api', `127.0.0.1:${await freePort()}`];
    coord = await start();
    browser = await playwright.launch({ executablePath: browserFound.path!, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 }, colorScheme: 'dark' });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (coord) await stopDaemon(coord);
  });

  const authed = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${coord.api}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const noopGoal = (goal: string) =>
    authed<{ goalId: string }>('/v1/goals', {
      goal,
      flows: [{ id: 'main', persona: 'Tester' }],
      actions: [{ id: 'one', flowId: 'main', kind: 'builtin', params: { name: 'noop' }, dependsOn: [] }],
    });

  it('asks for the token, then shows the mesh with it (kept for the tab only)', async () => {
    expect((await fetch(`${coord.api}/v1/peers`)).status).toBe(401);
    await page.goto(coord.api);
    await page.locator('#connection[data-status="down"]').waitFor({ timeout: UI_MS });
    expect(await page.locator('#notice').textContent()).toContain('needs a token');
    await page.locator('#token').fill(TOKEN);
    await page.locator('#token-form button[type="submit"]').click();
    await page.locator('#connection[data-status="live"]').waitFor({ timeout: UI_MS });
    await page.locator(`#nodes-body tr[data-node="${coord.peerId}"]`).waitFor({ timeout: UI_MS });
    expect(await page.evaluate("sessionStorage.getItem('hermes-mesh.token')")).toBe(TOKEN);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    const { goalId } = await noopGoal('before the restart');
    await page.locator(`#goals-body tr[data-goal="${goalId}"][data-state="ACTIVE"]`).waitFor({ timeout: UI_MS });
  });

  it('reconnects when the stream drops and resumes from its last position: no event lost or repeated', async () => {
    await page.evaluate(() => {
      (globalThis as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    const dataDir = coord.dataDir;
    await stopDaemon(coord);
    await page.locator('#connection[data-status="down"]').waitFor({ timeout: UI_MS });
    coord = await start(dataDir);
    await page.locator('#connection[data-status="live"]').waitFor({ timeout: UI_MS });
    const { goalId } = await noopGoal('after the restart');
    await page.locator(`#goals-body tr[data-goal="${goalId}"][data-state="ACTIVE"]`).waitFor({ timeout: UI_MS });
    await authed(`/v1/goals/${goalId}/cancel`, {});
    await page.locator(`#goals-body tr[data-goal="${goalId}"][data-state="CANCELLED"]`).waitFor({ timeout: UI_MS });
    await page.locator(`#feed li[data-type="goal.cancelled"] a[title="${goalId}"]`).waitFor({ timeout: UI_MS });
    // The errors shown while the coordinator was away go once it answers again.
    await page.locator('#notice').waitFor({ state: 'hidden', timeout: UI_MS });
    const positions = await page
      .locator('#feed li[data-position]')
      .evaluateAll((items) => items.map((li) => Number(li.getAttribute('data-position'))));
    const { position } = await authed<{ position: number }>('/v1/ledger');
    // Newest first, every position once, none missing up to the ledger's end.
    expect(positions[0]).toBe(position);
    expect(positions).toEqual([...positions].sort((a, b) => b - a));
    expect(new Set(positions).size).toBe(positions.length);
    expect(positions.length).toBe(positions[0]! - positions.at(-1)! + 1);
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await page.screenshot({ path: '/tmp/hermes-dashboard-dark.png', fullPage: true });
  });
});
