import { Command, Option } from 'commander';
import { type ApiClient, ApiError, createApiClient, EXIT } from './client.js';
import { formatTable } from './format.js';
import { formatNodes, type PeerView } from './nodes.js';
import { loadPlanFile, withOverrides } from './plan.js';
import type { GoalRequest } from './spec.js';

const VERSION = '0.1.0';

interface GoalView {
  id: string;
  text: string;
  state: string;
  summary?: string;
  reason?: string;
  actions: ActionRow[];
}

interface ActionRow {
  id: string;
  planId: string;
  flowId: string;
  kind: string;
  state: string;
  node?: string;
  attempts: number;
  error?: string;
  waiting?: string;
  output?: { summary?: string };
}

let running: Command | undefined;

/** The API URL: the command's own --api, else the one given before the command, else HERMES_API. */
function client(program: Command): ApiClient {
  const own = running?.opts<{ api?: string }>().api;
  const { api } = program.opts<{ api: string }>();
  return createApiClient({ baseUrl: own ?? api, token: process.env.HERMES_API_TOKEN });
}

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : human()}\n`);
}

async function nodeNames(api: ApiClient): Promise<Map<string, string>> {
  try {
    const { peers } = await api.get<{ peers: PeerView[] }>('/v1/peers');
    return new Map(peers.map((p) => [p.nodeId, p.name]));
  } catch {
    return new Map();
  }
}

function formatGoal(goal: GoalView, names: Map<string, string>): string {
  const rows = goal.actions.map((a) => [
    a.planId,
    a.flowId,
    a.kind,
    a.state,
    a.node ? (names.get(a.node) ?? a.node.slice(-6)) : '-',
    String(a.attempts),
    (a.error ?? a.waiting ?? a.output?.summary ?? '').replace(/\s+/g, ' ').slice(0, 80),
  ]);
  const head = `goal ${goal.id}  ${goal.state}\n${goal.text}\n`;
  const tail = goal.summary && goal.state !== 'ACTIVE' ? `\nresult:\n${goal.summary}` : '';
  return `${head}\n${formatTable(['ACTION', 'FLOW', 'KIND', 'STATE', 'NODE', 'TRIES', 'DETAIL'], rows)}${tail}`;
}

const FINISHED = new Set(['goal.finished', 'goal.cancelled']);

/** Prints every state change of a goal (or of all goals) as it happens; resolves when the goal ends. */
async function follow(api: ApiClient, goalId: string | undefined, json: boolean, signal: AbortSignal): Promise<void> {
  const names = await nodeNames(api);
  const path = goalId ? `/v1/events?goal=${encodeURIComponent(goalId)}&from=0` : '/v1/events';
  for await (const sse of api.events(path, signal)) {
    const e = JSON.parse(sse.data) as {
      type: string;
      goalId?: string;
      actionId?: string;
      state?: string;
      epoch?: number;
      ts: number;
      data?: {
        node?: string;
        error?: string;
        reason?: string;
        summary?: string;
        outcome?: string;
        text?: string;
        output?: { summary?: string };
      };
    };
    if (json) process.stdout.write(`${sse.data}\n`);
    else {
      const time = new Date(e.ts).toISOString().slice(11, 19);
      const action = e.actionId?.slice((e.goalId?.length ?? -1) + 1) ?? '';
      if (e.type === 'action.state') {
        const node = e.data?.node ? ` on ${names.get(e.data.node) ?? e.data.node.slice(-6)}` : '';
        // An error line says what failed; every later line says what happens about it.
        const why = e.state === 'ERROR' ? (e.data?.error ?? e.data?.reason) : (e.data?.reason ?? e.data?.error);
        process.stdout.write(
          `${time}  ${action.padEnd(16)} ${e.state}${node}${why ? `  (${why.slice(0, 120)})` : ''}\n`,
        );
        // A claim of success carries its output.
        const summary = e.data?.output?.summary;
        if (summary) process.stdout.write(`${time}  ${action.padEnd(16)} output: ${summary.slice(0, 120)}\n`);
      } else if (e.type === 'action.output') {
        process.stdout.write(`${time}  ${action.padEnd(16)} output: ${(e.data?.summary ?? '').slice(0, 120)}\n`);
      } else if (e.type === 'goal.submitted') {
        process.stdout.write(`${time}  goal ${e.goalId} submitted: ${(e.data?.text ?? '').slice(0, 100)}\n`);
      } else if (e.type === 'goal.finished' || e.type === 'goal.cancelled') {
        process.stdout.write(`${time}  goal ${e.goalId} ${e.data?.outcome ?? 'CANCELLED'}\n`);
      }
    }
    if (goalId && FINISHED.has(e.type) && e.goalId === goalId) return;
  }
}

interface RankedModelView {
  name: string;
  provider: string;
  score: number;
  tier: string;
  source: string;
  reason: string;
  loadedOn: string[];
  availableOn: string[];
}

function formatModels(models: RankedModelView[]): string {
  if (models.length === 0) return 'no live node serves a model (configure Ollama or a provider on a node)';
  return formatTable(
    ['MODEL', 'PROVIDER', 'SCORE', 'TIER', 'LOADED ON', 'AVAILABLE ON', 'SOURCE'],
    models.map((m) => [
      m.name,
      m.provider,
      m.score.toFixed(2),
      m.tier,
      m.loadedOn.join(',') || '-',
      m.availableOn.join(',') || '-',
      `${m.source}: ${m.reason}`.slice(0, 70),
    ]),
  );
}

export function buildProgram(): Command {
  const program = new Command('hermes-coord')
    .description('hermes-mesh coordinator and client: submit goals, watch them run, look at the mesh')
    .version(VERSION)
    .option('--api <url>', 'API to talk to (env HERMES_API)', process.env.HERMES_API ?? 'http://127.0.0.1:4880')
    .enablePositionalOptions()
    .showHelpAfterError()
    .hook('preAction', (_program, command) => {
      running = command;
    });

  program
    .command('serve')
    .description('run a coordinator: a mesh node that takes goals and places their actions (takes every hermesd flag)')
    .allowUnknownOption()
    .passThroughOptions()
    .helpOption(false)
    .argument('[flags...]')
    .action(async (flags: string[]) => {
      const { serve } = await import('./serve-main.js');
      await serve(flags);
    });

  program
    .command('submit')
    .option('--api <url>', 'API to talk to (default: the global --api, env HERMES_API)')
    .description('submit a goal: free text, or --plan FILE; waits and shows progress unless --async')
    .argument('[goal]', 'the goal in words')
    .option('--plan <file>', 'a plan file (YAML or JSON)')
    .addOption(new Option('--policy <policy>', 'compute policy').choices(['local_preferred', 'cloud_preferred']))
    .option('--provider <name>', 'LLM provider for llm actions')
    .option('--model <name>', 'model for llm actions')
    .addOption(new Option('--reasoning-effort <level>', 'reasoning effort').choices(['low', 'medium', 'high']))
    .option(
      '--speculative',
      'also run each llm action on the cheapest capable model: a fast answer first, the expert one later',
    )
    .option(
      '--autonomous',
      "when an action fails for good, let the coordinator's verifier model propose a fallback instead of waiting for you",
    )
    .option('--async', 'print the goal id and return at once')
    .option('--json', 'print JSON')
    .action(async (text: string | undefined, opts) => {
      const api = client(program);
      if (!opts.plan && !text) throw new ApiError('give a goal in words or --plan FILE', EXIT.badInput);
      let request: GoalRequest | { text: string; speculative?: boolean; autonomous?: boolean };
      if (opts.plan) {
        request = withOverrides(await loadPlanFile(opts.plan), opts);
      } else {
        request = { text: text! };
      }
      if (opts.speculative) request.speculative = true;
      if (opts.autonomous) request.autonomous = true;
      const { goalId } = await api.post<{ goalId: string }>('/v1/goals', request);
      if (opts.async) {
        print(Boolean(opts.json), { goalId }, () => goalId);
        return;
      }
      if (!opts.json) process.stdout.write(`goal ${goalId}\n`);
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      await follow(api, goalId, Boolean(opts.json), abort.signal);
      const goal = await api.get<GoalView>(`/v1/goals/${goalId}`);
      if (!opts.json) process.stdout.write(`\n${formatGoal(goal, await nodeNames(api))}\n`);
      if (goal.state !== 'COMPLETED') process.exitCode = EXIT.failure;
    });

  program
    .command('status')
    .option('--api <url>', 'API to talk to (default: the global --api, env HERMES_API)')
    .description('show a goal and its actions (an id or a unique id prefix)')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const api = client(program);
      const goal = await api.get<GoalView>(`/v1/goals/${encodeURIComponent(id)}`);
      const names = opts.json ? new Map<string, string>() : await nodeNames(api);
      print(Boolean(opts.json), goal, () => formatGoal(goal, names));
    });

  program
    .command('watch')
    .option('--api <url>', 'API to talk to (default: the global --api, env HERMES_API)')
    .description('follow live events, of one goal or of the whole mesh')
    .argument('[id]')
    .option('--json', 'print one JSON event per line')
    .action(async (id: string | undefined, opts: { json?: boolean }) => {
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      await follow(client(program), id, Boolean(opts.json), abort.signal);
    });

  program
    .command('cancel')
    .option('--api <url>', 'API to talk to (default: the global --api, env HERMES_API)')
    .description('cancel a goal: its running actions are stopped on their nodes')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const result = await client(program).post(`/v1/goals/${encodeURIComponent(id)}/cancel`, {
        reason: 'cancelled by user',
      });
      print(Boolean(opts.json), result, () => `goal ${id} cancelled`);
    });

  program
    .command('approve')
    .option('--api <url>', 'API to talk to (default: the global --api, env HERMES_API)')
    .description('answer a failed action that waits for approval: place it again, or --abort it (its goal fails)')
    .argument('<action-id>', 'the id shown by watch and status: <goal id>.<action id>')
    .option('--abort', 'end the action instead of retrying it')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { abort?: boolean; json?: boolean }) => {
      const decision = opts.abort ? 'abort' : 'retry';
      const result = await client(program).post(`/v1/actions/${encodeURIComponent(id)}/decision`, { decision });
      print(Boolean(opts.json), result, () => `${id}: ${decision === 'retry' ? 'placed again' : 'aborted'}`);
    });

  program
    .command('search')
    .option('--api <url>', 'API to talk to (default: the global --api, env HERMES_API)')
    .description('full-text search over goals and results; a short alphanumeric query also matches id prefixes')
    .argument('<query...>')
    .option('--json', 'print JSON')
    .action(async (words: string[], opts: { json?: boolean }) => {
      const q = words.join(' ');
      const { hits } = await client(program).get<{ hits: Array<Record<string, unknown>> }>(
        `/v1/search?q=${encodeURIComponent(q)}`,
      );
      print(Boolean(opts.json), hits, () =>
        hits.length === 0 ? `nothing matches "${q}"` : hits.map((h) => JSON.stringify(h)).join('\n'),
      );
      if (hits.length === 0) process.exitCode = EXIT.notFound;
    });

  program
    .command('nodes')
    .option('--api <url>', 'API to talk to (default: the global --api, env HERMES_API)')
    .description('list the nodes of the mesh, with tier, resources, models and liveness')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { peers } = await client(program).get<{ peers: PeerView[] }>('/v1/peers');
      print(Boolean(opts.json), peers, () => formatNodes(peers));
    });

  program
    .command('models')
    .option('--api <url>', 'API to talk to (default: the global --api, env HERMES_API)')
    .description("list the mesh's models ranked by capability, with tier, where each is loaded and the score's source")
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const models = await client(program).get<RankedModelView[]>('/v1/models');
      print(Boolean(opts.json), models, () => formatModels(models));
    });
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof ApiError) {
      process.stderr.write(`hermes-coord: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`hermes-coord: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT.failure;
  }
}
