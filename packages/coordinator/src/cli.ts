import { Command } from 'commander';
import { ApiError, createApiClient, EXIT } from './client.js';
import { formatNodes, type PeerView } from './nodes.js';

const VERSION = '0.1.0';

interface GlobalOptions {
  api: string;
}

function client(program: Command) {
  const { api } = program.opts<GlobalOptions>();
  return createApiClient({ baseUrl: api, token: process.env.HERMES_API_TOKEN });
}

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : human()}\n`);
}

export function buildProgram(): Command {
  const program = new Command('hermes-coord')
    .description('hermes-mesh client: look at the mesh and (soon) submit goals to it')
    .version(VERSION)
    .option('--api <url>', 'API to talk to (env HERMES_API)', process.env.HERMES_API ?? 'http://127.0.0.1:4880')
    .showHelpAfterError();

  program
    .command('nodes')
    .description('list the nodes of the mesh, with tier, resources, models and liveness')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { peers } = await client(program).get<{ peers: PeerView[] }>('/v1/peers');
      print(Boolean(opts.json), peers, () => formatNodes(peers));
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
