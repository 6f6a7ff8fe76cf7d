import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createReplicator, type Ledger, openLedger, type Replicator } from '@hermes-mesh/ledger';
import {
  createMembership,
  createMeshNode,
  loadOrCreateIdentity,
  loadOrCreateMeshKey,
  type Member,
  type Membership,
  type MembershipEvent,
  type MeshNode,
} from '@hermes-mesh/mesh';
import { createProber, type ProbeResult } from '@hermes-mesh/probe';
import { type Advert, createRejectionLog, PROTOCOLS } from '@hermes-mesh/protocol';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createApi } from './api.js';
import { ConfigError, type DaemonConfig } from './config.js';
import { createDaemonMetrics } from './metrics.js';
import { createTicker } from './ticker.js';
import { VERSION } from './version.js';
import { type ActionRunner, createWorker } from './worker.js';

export interface Daemon {
  readonly peerId: string;
  readonly meshId: string;
  readonly apiUrl: string;
  addrs(): string[];
  advert(): Advert;
  members(): Member[];
  readonly mesh: MeshNode;
  /** This node's replica of the mesh ledger. */
  readonly ledger: Ledger;
  /** Announces leaving, so peers drop this node at once, then stops everything. */
  stop(reason?: string): Promise<void>;
}

/** Written to the data dir while the daemon runs: how tools (and tests) find its API and addresses. */
export interface DaemonStateFile {
  pid: number;
  peerId: string;
  meshId: string;
  name: string;
  api: string;
  addrs: string[];
  startedAt: number;
}

export const STATE_FILE = 'hermesd.json';

async function claimDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  let previous: DaemonStateFile | undefined;
  try {
    previous = JSON.parse(await readFile(join(dataDir, STATE_FILE), 'utf8')) as DaemonStateFile;
  } catch {
    return;
  }
  if (previous.pid === process.pid) return;
  try {
    process.kill(previous.pid, 0);
  } catch {
    return; // Its process is gone (crash or kill -9): the data dir is free.
  }
  throw new ConfigError(
    `data dir ${dataDir} is in use by hermesd pid ${previous.pid} (${previous.api}); stop it or pick another --data-dir`,
  );
}

/**
 * Adverts go on gossip every this many heartbeats; directly to each connected peer on every one. Gossip is how a
 * node hears of members it is not connected to, and those cases gossip every heartbeat (a new connection, an
 * unconnected live member); in a settled mesh it is a fallback, and each gossiped advert costs every node a
 * signature check and forwarded duplicates (every 5th heartbeat: ~0.1% of a core on an idle 3-node mesh).
 */
const ADVERT_GOSSIP_EVERY = 30;
/** How long after start and after each new connection adverts go on gossip every heartbeat. */
const MESH_CHANGE_MS = 10_000;

/** What a plugin (the coordinator service) gets: the node's parts, before the API starts listening. */
export interface DaemonContext {
  config: DaemonConfig;
  logger: Logger;
  mesh: MeshNode;
  ledger: Ledger;
  replicator: Replicator;
  membership: Membership;
  api: FastifyInstance;
  /** Called when the daemon stops, before the mesh and ledger close. */
  onStop(fn: () => Promise<void> | void): void;
}

export type DaemonPlugin = (context: DaemonContext) => Promise<void>;

export interface StartOptions {
  /** Runs assigned actions; without one the node takes no work (0 slots), e.g. a pure coordinator. */
  runner?: ActionRunner;
  plugins?: DaemonPlugin[];
  /** Called last when the daemon stops (e.g. to close the executor's thread pool). */
  onStop?: () => Promise<void> | void;
}

/** Starts hermesd: identity, mesh key, probe, libp2p mesh, membership, adverts and the local API. */
export async function startDaemon(config: DaemonConfig, logger: Logger, options: StartOptions = {}): Promise<Daemon> {
  await claimDataDir(config.dataDir);
  const identity = await loadOrCreateIdentity(join(config.dataDir, 'identity.key'));
  const meshKey = await loadOrCreateMeshKey(config.meshKeyPath);
  if (meshKey.created) {
    logger.warn(
      { meshKey: config.meshKeyPath },
      'created a new private mesh key: copy this file to every node that should join this mesh and pass it with --mesh-key',
    );
  }
  const metrics = createDaemonMetrics();
  const prober = createProber({
    nvidiaSmiPath: config.nvidiaSmi,
    modelEndpoints: config.models,
    logger: logger.child({ component: 'probe' }),
  });
  const startedAt = Date.now();
  let probe: ProbeResult = await prober.probe();
  const log = logger.child({ component: 'mesh' });
  const mesh = await createMeshNode({
    privateKey: identity.key,
    psk: meshKey.psk,
    listen: config.listen,
    bootstrap: config.bootstrap,
    mdns: config.mdns,
    logger: log,
  });
  // Every node keeps a replica of the ledger, so no work is lost when a node or the coordinator dies.
  const ledger = await openLedger({
    path: join(config.dataDir, 'ledger'),
    origin: mesh.peerId,
    sync: config.ledgerFsync,
    // What the ledger works around (an unusable snapshot, a damaged event under one) goes into the JSON log.
    warn: (message) => logger.warn({ ledger: true }, message),
  });
  logger.info({ ...ledger.counts(), openMs: Math.round(ledger.openStats.ms) }, 'ledger open');
  const rejections = createRejectionLog({
    count: (r) => metrics.rejected.inc({ reason: r.reason, kind: r.kind ?? 'unknown' }),
    log: (peer, r, suppressed) => log.warn({ peer, ...r, suppressed }, 'rejected a message from a peer'),
  });
  mesh.on('rejected', (rejection, peer) => rejections.record(peer, rejection));

  // Suspicion is noticed on the heartbeat; death is declared on time by a timer armed only while a node is suspect.
  let deathCheck: { at: number; timer: NodeJS.Timeout } | undefined;
  const watchForDeaths = () => {
    const at = membership.nextDeathAt();
    if (at === undefined || (deathCheck && deathCheck.at <= at)) return;
    if (deathCheck) clearTimeout(deathCheck.timer);
    const timer = setTimeout(() => {
      deathCheck = undefined;
      membership.tick();
      watchForDeaths();
    }, at - Date.now());
    deathCheck = { at, timer };
  };
  const onMembershipEvent = (event: MembershipEvent) => {
    const { member } = event;
    if (member.self) return;
    const fields = {
      node: member.nodeId,
      name: member.advert.name,
      reason: 'reason' in event ? event.reason : undefined,
    };
    log.info(fields, `peer ${event.type}`);
    if (event.type === 'suspect') watchForDeaths();
    if (event.type === 'joined' && !mesh.connectedPeers().includes(member.nodeId)) {
      // Adverts reach us through any peer; a direct connection keeps gossip flowing if that peer dies.
      void dialAny(mesh, member.advert.addrs).catch(() => {});
    }
  };
  const membership = createMembership({
    selfId: mesh.peerId,
    now: Date.now,
    heartbeatMs: config.heartbeatMs,
    deadAfterMs: config.deadAfterMs,
    onEvent: onMembershipEvent,
  });
  mesh.on('message', (message) => {
    metrics.received.inc({ kind: message.kind });
    if (message.kind === 'advert') membership.observeAdvert(message.body);
    else if (message.kind === 'leave') membership.observeLeave(message.body.nodeId, message.body.reason);
    else membership.observeLife(message.from);
  });
  mesh.on('peer:disconnect', (peer) => membership.observeDisconnect(peer));
  /** A live member this node has no connection to hears from it only through others, by gossip. */
  const someMemberUnconnected = (connected = new Set(mesh.connectedPeers())) =>
    membership
      .members()
      .some((m) => !m.self && (m.state === 'alive' || m.state === 'suspect') && !connected.has(m.nodeId));
  const replicator: Replicator = await createReplicator({ ledger, mesh, relay: () => someMemberUnconnected() });

  // Hosted APIs this node is configured to call count as models it serves (always "loaded", no VRAM).
  const providerModels = config.providers.flatMap((p) =>
    [...new Set([...(p.defaultModel ? [p.defaultModel] : []), ...(p.models ?? [])])].map((name) => ({
      name,
      provider: 'openai' as const,
      providerName: p.name,
      endpoint: p.baseUrl,
      loaded: true,
      sizeBytes: 0,
      vramBytes: 0,
      quant: '',
      family: '',
      parameterSize: '',
      ctx: 0,
    })),
  );
  let seq = 0;
  const slots = options.runner ? (config.slots ?? Math.max(1, probe.cpu.cores)) : 0;
  const worker = options.runner
    ? await createWorker({
        mesh,
        ledger,
        replicator,
        runner: options.runner,
        slots,
        logger: logger.child({ component: 'worker' }),
      })
    : undefined;
  const buildAdvert = (): Advert => ({
    nodeId: mesh.peerId,
    name: config.name,
    labels: config.labels,
    tier: probe.tier,
    cpu: probe.cpu,
    mem: probe.mem,
    gpus: probe.gpus,
    models: [...probe.models, ...providerModels],
    slots: slotsNow(),
    location: config.location,
    draining: false,
    version: VERSION,
    addrs: mesh.addrs(),
    startedAt,
    seq: ++seq,
  });
  function slotsNow(): Advert['slots'] {
    const busy = Math.min(slots, worker?.busy() ?? 0);
    if (busy === 0) return { total: slots, busy };
    return { total: slots, busy, byCoordinator: worker!.busyByCoordinator() };
  }
  let current = buildAdvert();
  membership.observeAdvert(current);
  const registered = await ledger.append({
    type: 'node.registered',
    data: { name: config.name, tier: probe.tier, location: config.location, labels: config.labels },
  });
  if (!registered.ok) log.warn({ error: registered.error }, 'could not record this node in the ledger');

  /**
   * Each heartbeat the advert goes straight to every connected peer over a kept-open stream: one write per peer,
   * no signature (noise already authenticates the sender), nothing forwarded; while it is what that peer was last
   * sent, only a small beat. Gossip costs every node a signature check, a decode and forwarded duplicates, so the
   * advert goes there every ADVERT_GOSSIP_EVERY-th heartbeat (then the whole advert also goes directly again),
   * and every heartbeat while the mesh changes or while a live member is not connected here: gossip is how nodes
   * learn of the others (and then dial them), and how an unconnected member hears us.
   */
  let beat = 0;
  let gossipEveryBeatUntil = Date.now() + MESH_CHANGE_MS;
  /** What each peer was last sent directly (the advert without its seq): while it holds, a beat says enough. */
  const sentTo = new Map<string, string>();
  const sendAdvertTo = (peer: string, content?: string) => {
    const same = content !== undefined && sentTo.get(peer) === content;
    const sent = same
      ? mesh.notify(peer, PROTOCOLS.advert, 'beat', { nodeId: mesh.peerId, seq: current.seq })
      : mesh.notify(peer, PROTOCOLS.advert, 'advert', current);
    if (content !== undefined) sentTo.set(peer, content);
    return sent.catch((err) => {
      sentTo.delete(peer);
      log.debug({ peer, err: String(err) }, 'could not send advert directly');
    });
  };
  mesh.on('peer:disconnect', (peer) => sentTo.delete(peer));
  const publishAdvert = async () => {
    current = buildAdvert();
    membership.observeAdvert(current);
    const periodic = beat++ % ADVERT_GOSSIP_EVERY === 0;
    // Every ADVERT_GOSSIP_EVERY-th beat the whole advert goes to everyone again (a peer may have missed one).
    if (periodic) sentTo.clear();
    const gossipNow = periodic || Date.now() < gossipEveryBeatUntil;
    const content = JSON.stringify({ ...current, seq: 0 });
    const connected = new Set(mesh.connectedPeers());
    for (const peer of connected) void sendAdvertTo(peer, content);
    if (!gossipNow && !someMemberUnconnected(connected)) return;
    try {
      await mesh.publish('advert', current);
      metrics.published.inc({ kind: 'advert' });
    } catch (err) {
      log.warn({ err: String(err) }, 'could not publish advert');
    }
  };
  await mesh.listen(PROTOCOLS.advert, (message, peer) => {
    if ((message.kind !== 'advert' && message.kind !== 'beat') || message.body.nodeId !== peer) {
      const detail = `direct ${message.kind} from ${peer} about ${(message.body as { nodeId?: string }).nodeId}`;
      rejections.record(peer, { reason: 'sender-mismatch', kind: message.kind, detail });
      return;
    }
    metrics.received.inc({ kind: message.kind });
    if (message.kind === 'advert') membership.observeAdvert(message.body);
    else membership.observeLife(peer);
  });
  // A new connection hears from us at once, not a heartbeat later.
  mesh.on('peer:connect', (peer) => {
    void sendAdvertTo(peer);
    gossipEveryBeatUntil = Date.now() + MESH_CHANGE_MS;
  });
  await publishAdvert();

  // All periodic work rides one ticker: one wake-up per heartbeat (see ticker.ts).
  const ticker = createTicker({
    periodMs: config.heartbeatMs,
    onLag: (ms) => metrics.eventLoopLag.observe(ms / 1000),
    onError: (err) => logger.error({ err: String(err) }, 'periodic task failed'),
  });
  ticker.every(config.heartbeatMs, publishAdvert);
  ticker.every(config.heartbeatMs, () => {
    membership.tick();
    watchForDeaths();
  });
  metrics.live.members = () => {
    const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of membership.members()) counts[m.state] = (counts[m.state] ?? 0) + 1;
    return counts;
  };
  metrics.live.connectedPeers = () => mesh.connectedPeers().length;
  ticker.every(config.probeIntervalMs, async () => {
    const next = await prober.probe();
    metrics.probeSeconds.observe(next.durationMs / 1000);
    const changed =
      JSON.stringify([next.models, next.gpus.length, next.tier]) !==
      JSON.stringify([probe.models, probe.gpus.length, probe.tier]);
    probe = next;
    if (changed) await publishAdvert(); // Sent on change, not only on the next heartbeat.
  });

  const api = createApi({
    self: () => current,
    members: () => membership.members(),
    ledger: () => ({ ...ledgerSummary(ledger), replication: replicator.stats() }),
    search: (q, limit) => ledger.search(q, limit),
    history: (id) => ledger.history(id),
    metrics,
    token: config.apiToken,
    logger,
  });
  const stopHooks: Array<() => Promise<void> | void> = [];
  for (const plugin of options.plugins ?? []) {
    await plugin({ config, logger, mesh, ledger, replicator, membership, api, onStop: (fn) => stopHooks.push(fn) });
  }
  const apiAddress = await api.listen({ host: config.api.host, port: config.api.port });
  const apiUrl = apiAddress.replace('0.0.0.0', '127.0.0.1');
  const state: DaemonStateFile = {
    pid: process.pid,
    peerId: mesh.peerId,
    meshId: mesh.meshId,
    name: config.name,
    api: apiUrl,
    addrs: mesh.addrs(),
    startedAt,
  };
  await writeFile(join(config.dataDir, STATE_FILE), JSON.stringify(state, null, 2));
  logger.info(
    {
      peerId: mesh.peerId,
      meshId: mesh.meshId,
      addrs: state.addrs,
      api: apiUrl,
      tier: probe.tier,
      identityCreated: identity.created,
    },
    'hermesd started',
  );

  let stopping: Promise<void> | undefined;
  return {
    peerId: mesh.peerId,
    meshId: mesh.meshId,
    apiUrl,
    mesh,
    addrs: () => mesh.addrs(),
    advert: () => current,
    members: () => membership.members(),
    ledger,
    stop(reason = 'shutdown') {
      stopping ??= (async () => {
        ticker.stop();
        if (deathCheck) clearTimeout(deathCheck.timer);
        try {
          await Promise.race([
            mesh.publish('leave', { nodeId: mesh.peerId, reason }),
            new Promise((r) => setTimeout(r, 500)),
          ]);
        } catch (err) {
          log.debug({ err: String(err) }, 'could not announce leaving');
        }
        for (const hook of stopHooks) await hook();
        await worker?.stop();
        await api.close();
        replicator.stop();
        await mesh.stop();
        await ledger.close();
        await options.onStop?.();
        await prober.close();
        await rm(join(config.dataDir, STATE_FILE), { force: true });
        logger.info({ reason }, 'hermesd stopped');
      })();
      return stopping;
    },
  };
}

/** What `GET /v1/ledger` shows: enough to see that replicas agree (same hash) and how far each has got. */
export function ledgerSummary(ledger: Ledger) {
  return {
    origin: ledger.origin,
    position: ledger.position(),
    counts: ledger.counts(),
    stateHash: ledger.stateHash(),
    versionVector: ledger.versionVector(),
    gaps: ledger.gaps(),
  };
}

async function dialAny(mesh: MeshNode, addrs: string[]): Promise<void> {
  for (const addr of addrs) {
    try {
      await mesh.dial(addr, AbortSignal.timeout(3_000));
      return;
    } catch {
      // try the next address
    }
  }
}
