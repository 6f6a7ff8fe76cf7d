// The dashboard page: the mesh's nodes, its goals and their actions, and the live event feed. State comes from the
// REST API; the SSE stream says what changed, and the page re-reads just that.

import { ApiError, api, type EventStream, followEvents, type MeshEvent, savedToken, saveToken } from './api.js';
import { byId, type Child, fill, h } from './dom.js';
import { clock, formatAgo, formatBytes, oneLine, shortId } from './format.js';

interface Gpu {
  name: string;
  vramTotal: number;
  vramFree: number;
  util: number;
}
interface Model {
  name: string;
  loaded: boolean;
  provider: string;
}
interface Peer {
  nodeId: string;
  name: string;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  self: boolean;
  lastSeenMsAgo: number;
  advert: {
    tier: string;
    cpu: { cores: number; load: number; model: string };
    mem: { total: number; free: number };
    gpus: Gpu[];
    models: Model[];
    slots: { total: number; busy: number };
    location: string;
    draining: boolean;
    version: string;
  };
}
interface Goal {
  id: string;
  text: string;
  title?: string;
  state: string;
  submittedAt: number;
  updatedAt: number;
  finishedAt?: number;
  reason?: string;
  summary?: string;
  /** Actions by state, from the goal list (no need to read every action to show progress). */
  progress?: { total: number; completed: number };
}
interface ActionView {
  id: string;
  planId: string;
  flowId: string;
  kind: string;
  description: string;
  state: string;
  node?: string;
  epoch: number;
  attempts: number;
  dependsOn: string[];
  output?: { summary?: string; bytes?: number };
  error?: string;
  reason?: string;
  waiting?: string;
}
interface GoalDetail extends Goal {
  flows: Array<{ id: string; persona: string; description?: string }>;
  actions: ActionView[];
}

const FEED_MAX = 300;
const PEERS_EVERY_MS = 2_000;
const GOALS_EVERY_MS = 10_000;
const STATE_ORDER: Record<string, number> = { alive: 0, suspect: 1, dead: 2, left: 3 };
const GOAL_EVENTS = new Set(['goal.submitted', 'goal.finished', 'goal.cancelled', 'flow.created']);

const view = {
  peers: [] as Peer[],
  names: new Map<string, string>(),
  goals: [] as Goal[],
  details: new Map<string, GoalDetail>(),
  feed: [] as MeshEvent[],
  selected: undefined as string | undefined,
  peersAt: 0,
};
let stream: EventStream | undefined;

// ---- small pieces -----------------------------------------------------------------------------------------------

const badge = (state: string) => h('span', { class: `badge s-${state.toLowerCase()}`, data: { state } }, state);
const nodeName = (id: string | undefined) => (id ? (view.names.get(id) ?? shortId(id)) : '');
const planIdOf = (e: MeshEvent) => (e.actionId && e.goalId ? e.actionId.slice(e.goalId.length + 1) : '');
const goalTitle = (g: Goal) => oneLine(g.title || g.text, 120);

/** A bar for a share of 0..1; `busy` ones turn amber past 70% and red past 90% (CPU load, memory in use). */
function meter(fraction: number, label: string, busy = false): HTMLElement {
  const value = String(Math.max(0, Math.min(1, fraction)));
  return busy
    ? h('meter', { min: '0', max: '1', low: '0.7', high: '0.9', optimum: '0', value, title: label })
    : h('meter', { min: '0', max: '1', value, title: label });
}

/** What the error notice is about (a failed call's name), so the next success of that call clears it. */
let noticeAbout: string | undefined;

function notice(message: string | undefined, kind: 'error' | 'info' = 'error', about?: string): void {
  noticeAbout = message && kind === 'error' ? about : undefined;
  const el = byId('notice');
  el.hidden = !message;
  el.className = `notice ${kind}`;
  fill(el, message ?? '');
}

function connection(text: string, kind: 'live' | 'wait' | 'down'): void {
  const el = byId('connection');
  el.className = `connection ${kind}`;
  el.dataset.status = kind;
  fill(el, text);
}

/** Runs an API call; a 401 asks for the token, anything else is shown in the notice line. */
async function guarded<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    const result = await call();
    if (noticeAbout === what || noticeAbout === 'token') notice(undefined);
    return result;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) askForToken();
    else notice(`${what}: ${(err as Error).message}`, 'error', what);
    return undefined;
  }
}

function askForToken(): void {
  connection('needs a token', 'down');
  notice(
    savedToken()
      ? 'The API refused this token. Enter the right one (HERMES_API_TOKEN of the coordinator).'
      : 'This API needs a token: enter HERMES_API_TOKEN of the coordinator above.',
    'error',
    'token',
  );
  byId<HTMLInputElement>('token').focus();
}

// ---- nodes ------------------------------------------------------------------------------------------------------

function renderNodes(): void {
  const peers = [...view.peers].sort(
    (a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) || a.name.localeCompare(b.name),
  );
  const alive = peers.filter((p) => p.state === 'alive');
  const slots = alive.reduce((s, p) => [s[0]! + p.advert.slots.busy, s[1]! + p.advert.slots.total], [0, 0]);
  fill(
    byId('nodes-summary'),
    `${alive.length} alive of ${peers.length} · slots ${slots[0]}/${slots[1]} busy`,
    view.peersAt ? ` · updated ${clock(view.peersAt)}` : '',
  );
  const rows = peers.map((p) => {
    const a = p.advert;
    const vramTotal = a.gpus.reduce((s, g) => s + g.vramTotal, 0);
    const vramFree = a.gpus.reduce((s, g) => s + g.vramFree, 0);
    return h(
      'tr',
      { data: { node: p.nodeId, state: p.state } },
      h(
        'td',
        { class: 'name' },
        h('span', { class: 'node-name', title: p.name }, p.name),
        p.self ? h('span', { class: 'tag', title: 'the node serving this page' }, 'coordinator') : null,
      ),
      h('td', { class: 'mono', title: p.nodeId }, shortId(p.nodeId)),
      h('td', null, badge(p.state), a.draining ? h('span', { class: 'tag warn' }, 'draining') : null),
      h('td', null, a.tier),
      h(
        'td',
        { class: 'num', title: a.cpu.model },
        `${a.cpu.cores} cores · ${Math.round(a.cpu.load * 100)}%`,
        meter(a.cpu.load, 'CPU load', true),
      ),
      h(
        'td',
        { class: 'num' },
        `${formatBytes(a.mem.free)} free / ${formatBytes(a.mem.total)}`,
        meter(a.mem.total ? 1 - a.mem.free / a.mem.total : 0, 'memory in use', true),
      ),
      h(
        'td',
        { class: 'num' },
        a.gpus.length === 0
          ? h('span', { class: 'muted' }, '—')
          : [
              a.gpus.length > 1 ? `${a.gpus.length}× · ${formatBytes(vramFree)} free / ${formatBytes(vramTotal)}` : '',
              a.gpus.map((g) =>
                h(
                  'div',
                  { class: 'gpu', title: g.name },
                  `${g.name}: ${formatBytes(g.vramFree)} / ${formatBytes(g.vramTotal)}`,
                ),
              ),
            ],
      ),
      h(
        'td',
        { class: 'models' },
        a.models.length === 0
          ? h('span', { class: 'muted' }, '—')
          : a.models.map((m) =>
              h(
                'span',
                {
                  class: m.loaded ? 'model loaded' : 'model',
                  title: `${m.provider}${m.loaded ? ', loaded' : ', not loaded'}`,
                },
                m.name,
              ),
            ),
      ),
      h('td', { class: 'num' }, `${a.slots.busy}/${a.slots.total}`),
      h('td', null, a.location),
      h('td', { class: 'muted' }, formatAgo(p.lastSeenMsAgo)),
    );
  });
  fill(
    byId('nodes-body'),
    rows.length ? rows : h('tr', null, h('td', { colspan: '11', class: 'muted' }, 'no nodes known yet')),
  );
}

async function refreshPeers(): Promise<void> {
  const res = await guarded('nodes', () => api<{ peers: Peer[] }>('/v1/peers'));
  if (!res) return;
  view.peers = res.peers;
  view.peersAt = Date.now();
  for (const p of res.peers) view.names.set(p.nodeId, p.name);
  renderNodes();
}

// ---- goals ------------------------------------------------------------------------------------------------------

function progressOf(goalId: string): { done: number; total: number } | undefined {
  const d = view.details.get(goalId);
  if (d) return { done: d.actions.filter((a) => a.state === 'COMPLETED').length, total: d.actions.length };
  const listed = view.goals.find((g) => g.id === goalId)?.progress;
  return listed ? { done: listed.completed, total: listed.total } : undefined;
}

function renderGoals(): void {
  const now = Date.now();
  const active = view.goals.filter((g) => g.state === 'ACTIVE').length;
  fill(byId('goals-summary'), `${view.goals.length} shown · ${active} active`);
  const rows = view.goals.map((g) => {
    const p = progressOf(g.id);
    const select = () => {
      location.hash = `goal=${encodeURIComponent(g.id)}`;
    };
    return h(
      'tr',
      {
        class: g.id === view.selected ? 'selected' : undefined,
        data: { goal: g.id, state: g.state },
        on: { click: select },
      },
      h(
        'td',
        { class: 'goal-text' },
        h('a', { href: `#goal=${encodeURIComponent(g.id)}`, title: g.text }, goalTitle(g)),
        h('div', { class: 'mono muted' }, shortId(g.id)),
      ),
      h('td', null, badge(g.state)),
      h(
        'td',
        { class: 'num progress-cell' },
        p ? [`${p.done}/${p.total}`, meter(p.total ? p.done / p.total : 0, 'actions completed')] : '…',
      ),
      h(
        'td',
        { class: 'muted nowrap', title: new Date(g.submittedAt).toLocaleString() },
        formatAgo(now - g.submittedAt),
      ),
    );
  });
  fill(
    byId('goals-body'),
    rows.length
      ? rows
      : h(
          'tr',
          null,
          h(
            'td',
            { colspan: '4', class: 'muted' },
            'no goals yet: hermes-coord submit --plan examples/plans/fan-out.json',
          ),
        ),
  );
}

async function refreshDetail(id: string): Promise<void> {
  const d = await guarded('goal', () => api<GoalDetail>(`/v1/goals/${encodeURIComponent(id)}`));
  if (!d) return;
  view.details.set(d.id, d);
  const i = view.goals.findIndex((g) => g.id === d.id);
  if (i >= 0) view.goals[i] = d;
}

/** Re-reads the goal list, then the details it lacks: finished goals are read once, active ones each time. */
async function refreshGoals(dirty: Set<string> = new Set()): Promise<void> {
  const res = await guarded('goals', () => api<{ goals: Goal[] }>('/v1/goals?limit=50'));
  if (!res) return;
  view.goals = res.goals;
  // The list carries each goal's progress: only the goal on screen is read in full (a goal can have 100k actions).
  for (const id of [...view.details.keys()]) if (id !== view.selected) view.details.delete(id);
  const wanted: string[] = [];
  if (view.selected && (dirty.has(view.selected) || !view.details.has(view.selected))) wanted.push(view.selected);
  await inBatches(wanted, 4, refreshDetail);
  renderGoals();
  renderDetail();
}

async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

// ---- one goal ---------------------------------------------------------------------------------------------------

function actionDetail(a: ActionView): Child {
  if (a.error) return h('span', { class: 'error-text' }, oneLine(a.error, 240));
  if (a.waiting) return h('span', { class: 'waiting' }, oneLine(a.waiting, 240));
  if (a.output?.summary) return oneLine(a.output.summary, 240);
  if (a.reason) return h('span', { class: 'muted' }, oneLine(a.reason, 240));
  return h('span', { class: 'muted' }, oneLine(a.description, 120));
}

function decisionButtons(a: ActionView): Child {
  if (a.state !== 'FALLBACK_REQUESTED') return null;
  const decide = (decision: 'retry' | 'abort') => async (event: Event) => {
    (event.currentTarget as HTMLButtonElement).disabled = true;
    const done = await guarded(decision === 'retry' ? 'approve' : 'abort', () =>
      api(`/v1/actions/${encodeURIComponent(a.id)}/decision`, { decision }),
    );
    if (done) notice(`${a.planId}: ${decision === 'retry' ? 'placed again' : 'aborted'}`, 'info');
    if (view.selected) await refreshDetail(view.selected).then(renderDetail);
  };
  return h(
    'span',
    { class: 'decide' },
    h(
      'button',
      { type: 'button', class: 'approve', data: { decide: 'retry' }, on: { click: decide('retry') } },
      'Approve',
    ),
    h(
      'button',
      { type: 'button', class: 'danger', data: { decide: 'abort' }, on: { click: decide('abort') } },
      'Abort',
    ),
  );
}

function renderDetail(): void {
  const el = byId('detail');
  const id = view.selected;
  if (!id) {
    fill(el, h('p', { class: 'muted' }, 'Select a goal to see its flows and actions.'));
    return;
  }
  const d = view.details.get(id);
  if (!d) {
    fill(el, h('p', { class: 'muted' }, `loading goal ${id}…`));
    return;
  }
  const p = progressOf(id)!;
  const cancel = async (event: Event) => {
    (event.currentTarget as HTMLButtonElement).disabled = true;
    await guarded('cancel', () =>
      api(`/v1/goals/${encodeURIComponent(id)}/cancel`, { reason: 'cancelled from the dashboard' }),
    );
    await refreshDetail(id);
    renderGoals();
    renderDetail();
  };
  const flows = d.flows.length ? d.flows : [{ id: '', persona: '' }];
  const known = new Set(flows.map((f) => f.id));
  const orphans = d.actions.filter((a) => !known.has(a.flowId));
  fill(
    el,
    h(
      'div',
      { class: 'detail-head', data: { goal: d.id, state: d.state } },
      h('h3', { class: 'goal-title' }, d.title || oneLine(d.text, 200)),
      d.title ? h('p', { class: 'goal-body' }, d.text) : null,
      h(
        'p',
        { class: 'facts' },
        badge(d.state),
        ` ${p.done}/${p.total} actions completed · submitted ${formatAgo(Date.now() - d.submittedAt)}`,
        d.finishedAt ? ` · took ${((d.finishedAt - d.submittedAt) / 1000).toFixed(1)} s` : '',
        ' · ',
        h('span', { class: 'mono', title: 'goal id' }, d.id),
      ),
      d.reason ? h('p', { class: 'muted' }, oneLine(d.reason, 400)) : null,
      d.state === 'ACTIVE'
        ? h('button', { type: 'button', class: 'danger', id: 'cancel-goal', on: { click: cancel } }, 'Cancel goal')
        : null,
    ),
    [...flows, ...(orphans.length ? [{ id: '?', persona: 'other actions' }] : [])].map((f) => {
      const actions =
        f.id === '?' ? orphans : d.actions.filter((a) => a.flowId === f.id || (!f.id && !known.has(a.flowId)));
      return h(
        'div',
        { class: 'flow', data: { flow: f.id } },
        h('h4', null, f.persona || f.id, f.id && f.persona ? h('span', { class: 'muted mono' }, ` ${f.id}`) : null),
        h(
          'table',
          { class: 'actions' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ...['Action', 'Kind', 'State', 'Node', 'Epoch', 'Tries', 'Detail'].map((t) =>
                h('th', { scope: 'col' }, t),
              ),
            ),
          ),
          h(
            'tbody',
            null,
            actions.map((a) =>
              h(
                'tr',
                { data: { action: a.planId, state: a.state } },
                h('td', { class: 'mono', title: a.id }, a.planId),
                h('td', null, a.kind),
                h('td', null, badge(a.state)),
                h('td', { title: a.node ?? '' }, nodeName(a.node) || h('span', { class: 'muted' }, '—')),
                h('td', { class: 'num' }, String(a.epoch)),
                h('td', { class: 'num' }, String(a.attempts)),
                h('td', { class: 'detail-text' }, actionDetail(a), decisionButtons(a)),
              ),
            ),
          ),
        ),
      );
    }),
    d.summary && d.state !== 'ACTIVE'
      ? h('details', null, h('summary', null, 'Result'), h('pre', null, d.summary))
      : null,
  );
}

function selectFromHash(): void {
  const m = /^#goal=(.+)$/.exec(location.hash);
  view.selected = m ? decodeURIComponent(m[1]!) : undefined;
  renderGoals();
  renderDetail();
  if (view.selected)
    void refreshDetail(view.selected).then(() => {
      renderGoals();
      renderDetail();
    });
}

// ---- live events ------------------------------------------------------------------------------------------------

/** The output summary a STATUS_VERIFICATION_REQUESTED event carries, if any. */
function outputSummary(d: Record<string, unknown>): string | undefined {
  const output = d.output as { summary?: unknown } | undefined;
  return typeof output?.summary === 'string' && output.summary !== '' ? output.summary : undefined;
}

function describe(e: MeshEvent): Child[] {
  const d = e.data ?? {};
  const text = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
  if (e.type === 'action.state') {
    const why = e.state === 'ERROR' ? (text('error') ?? text('reason')) : (text('reason') ?? text('error'));
    return [
      h('span', { class: 'mono' }, planIdOf(e)),
      ' ',
      badge(e.state ?? '?'),
      text('node') ? ` on ${nodeName(text('node'))}` : '',
      why ? h('span', { class: 'muted' }, ` ${oneLine(why, 160)}`) : '',
      outputSummary(d) ? ` output: ${oneLine(outputSummary(d), 160)}` : '',
    ];
  }
  if (e.type === 'action.output')
    return [h('span', { class: 'mono' }, planIdOf(e)), ` output: ${oneLine(text('summary'), 160)}`];
  if (e.type === 'action.created')
    return [h('span', { class: 'mono' }, planIdOf(e)), ` created (${text('kind') ?? ''})`];
  if (e.type === 'goal.submitted') return ['goal submitted: ', oneLine(text('title') ?? text('text'), 160)];
  if (e.type === 'goal.finished') return ['goal ', badge(text('outcome') ?? '?')];
  if (e.type === 'goal.cancelled')
    return ['goal ', badge('CANCELLED'), h('span', { class: 'muted' }, ` ${oneLine(text('reason'))}`)];
  if (e.type === 'flow.created') return [`flow ${text('flowId') ?? ''} (${text('persona') ?? ''})`];
  if (e.type === 'recipe.saved') return [`recipe saved for flow ${text('flowId') ?? ''}`];
  if (e.type === 'node.registered') return [`node ${text('name') ?? ''} registered`];
  if (e.type === 'node.left') return [`node ${nodeName(e.origin)} left: ${oneLine(text('reason'))}`];
  return [e.type];
}

function renderFeed(): void {
  fill(
    byId('feed'),
    view.feed.length
      ? view.feed.map((e) =>
          h(
            'li',
            { data: { type: e.type, position: String(e.position) } },
            h('time', { class: 'muted mono' }, clock(e.ts)),
            e.goalId
              ? h(
                  'a',
                  { class: 'mono goal-ref', href: `#goal=${encodeURIComponent(e.goalId)}`, title: e.goalId },
                  e.goalId.slice(0, 8),
                )
              : h('span', { class: 'goal-ref' }),
            h('span', { class: 'what' }, describe(e)),
          ),
        )
      : h('li', { class: 'muted' }, 'waiting for events…'),
  );
}

// What the events say changed, gathered and re-read together so a burst of events costs one round of requests.
const pending = { goals: new Set<string>(), list: false, peers: false };
let flushScheduled = false;
let feedDrawScheduled = false;

function onEvents(events: MeshEvent[]): void {
  for (const e of events) {
    if (e.goalId) {
      pending.goals.add(e.goalId);
      if (GOAL_EVENTS.has(e.type) || !view.goals.some((g) => g.id === e.goalId)) pending.list = true;
    }
    if (e.type === 'action.state' || e.type.startsWith('node.')) pending.peers = true;
  }
  view.feed = [...events.reverse(), ...view.feed].slice(0, FEED_MAX);
  // A burst arrives in many chunks: draw the feed once per frame, not once per chunk.
  if (!feedDrawScheduled) {
    feedDrawScheduled = true;
    requestAnimationFrame(() => {
      feedDrawScheduled = false;
      renderFeed();
    });
  }
  if (!flushScheduled) {
    flushScheduled = true;
    setTimeout(flush, 150);
  }
}

async function flush(): Promise<void> {
  const goals = new Set(pending.goals);
  const { list, peers } = pending;
  pending.goals.clear();
  pending.list = pending.peers = false;
  try {
    if (peers) await refreshPeers();
    if (list) await refreshGoals(goals);
    else if ([...goals].some((id) => id !== view.selected && view.goals.some((g) => g.id === id))) {
      // One list read updates every listed goal's progress (and the goal on screen, if it changed).
      await refreshGoals(goals);
    } else if (view.selected && goals.has(view.selected)) {
      await refreshDetail(view.selected);
      renderGoals();
      renderDetail();
    }
  } finally {
    if (pending.goals.size || pending.list || pending.peers) setTimeout(flush, 150);
    else flushScheduled = false;
  }
}

// ---- start ------------------------------------------------------------------------------------------------------

/** Loads everything and (re)connects the stream; run at start and after a new token. */
async function boot(): Promise<void> {
  notice(undefined);
  connection('connecting…', 'wait');
  const ledger = await guarded('ledger', () => api<{ position: number }>('/v1/ledger'));
  if (!ledger) return;
  await Promise.all([refreshPeers(), refreshGoals()]);
  if (stream) {
    stream.reconnect();
    return;
  }
  // Replays the last events so the feed is not empty on arrival, then follows live.
  stream = followEvents(Math.max(0, ledger.position - 200), onEvents, (s) => {
    if (s.kind === 'live') connection('live', 'live');
    else if (s.kind === 'connecting') connection('connecting…', 'wait');
    else if (s.kind === 'unauthorized') askForToken();
    else connection(`reconnecting (${s.why})`, 'down');
  });
}

function setUpToken(): void {
  const input = byId<HTMLInputElement>('token');
  input.value = savedToken();
  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    saveToken(input.value.trim());
    void boot();
  });
  byId('token-forget').addEventListener('click', () => {
    input.value = '';
    saveToken('');
    void boot();
  });
}

setUpToken();
window.addEventListener('hashchange', selectFromHash);
selectFromHash();
renderFeed();
void boot();
setInterval(() => {
  if (document.visibilityState === 'visible') void refreshPeers().then(renderGoals);
}, PEERS_EVERY_MS);
setInterval(() => {
  if (document.visibilityState === 'visible') void refreshGoals();
}, GOALS_EVERY_MS);
