import './polyfill.js';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import {
  type BodyOf,
  decodeMessage,
  encodeMessage,
  MAX_MESSAGE_BYTES,
  type Message,
  type MessageKind,
  ProtocolNotServedError,
  type Rejection,
  topics,
} from '@hermes-mesh/protocol';
import {
  type GossipSub,
  type Message as GossipsubMessage,
  type GossipsubOpts,
  gossipsub,
  TopicValidatorResult,
} from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { FramedStream } from './channel.js';
import { invalidGossipBridge } from './gossip-metrics.js';
import './pnet-cipher.js';
import './yamux-window.js';
import { meshIdFromKey } from './keys.js';
import type { GossipKind, GossipMessage, MeshEvents, MeshNode, RequestHandler, RequestOptions } from './types.js';

export interface MeshLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const silent: MeshLogger = { debug() {}, info() {}, warn() {} };

export interface MeshNodeInit {
  privateKey: PrivateKey;
  /** The private mesh key (pnet): only nodes holding it can even complete a TCP handshake. */
  psk: Uint8Array;
  /** Namespaces topics; defaults to a name derived from the mesh key. */
  meshId?: string;
  /** Multiaddrs to listen on; default one random loopback port. */
  listen?: string[];
  /** Multiaddrs to keep a connection to (with or without /p2p/<id>); redialled when lost. */
  bootstrap?: string[];
  /** Find peers on the LAN by mDNS and dial them. */
  mdns?: boolean;
  /** How often lost bootstrap peers are redialled. Default 2 s. */
  reconnectMs?: number;
  /**
   * How often libp2p pings each connection to find dead ones. Default 60 s: each ping opens a stream (about a
   * third of an idle daemon's CPU at libp2p's 10 s), and hermesd learns that a peer went silent from its adverts
   * within seconds; this only clears connections left half-open.
   */
  pingIntervalMs?: number;
  maxConnections?: number;
  logger?: MeshLogger;
  /** Gossipsub overrides (tests, tuning). */
  gossip?: Partial<GossipsubOpts>;
  /** Wraps the gossipsub factory's components (tests that must forge what a hostile peer sends). */
  wrapGossipComponents?: <C extends object>(components: C) => C;
}

/** Requests one inbound stream may have waiting before it stops reading more. */
const MAX_QUEUED_REQUESTS = 64;

const GOSSIP_KINDS: ReadonlySet<string> = new Set<GossipKind>(['advert', 'leave', 'events']);

type Listeners = { [E in keyof MeshEvents]: Set<MeshEvents[E]> };

interface Pending {
  resolve(message: Message): void;
  reject(err: unknown): void;
  /** Stops listening for the request's abort. */
  done(): void;
}

interface Outbound {
  framed: FramedStream;
  /** Requests sent and not yet answered, oldest first. */
  pending: Pending[];
}

class Libp2pMeshNode implements MeshNode {
  readonly peerId: string;
  readonly meshId: string;
  private readonly topicOf: Record<GossipKind, string>;
  private readonly kindOfTopic = new Map<string, GossipKind>();
  private readonly listeners: Listeners = {
    message: new Set(),
    rejected: new Set(),
    'peer:connect': new Set(),
    'peer:disconnect': new Set(),
  };
  /** Validation already decoded each accepted gossip message; the delivery handler reuses it. */
  private readonly validated = new WeakMap<GossipsubMessage, GossipMessage>();
  private readonly seq = new Map<MessageKind, number>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly libp2p: Libp2p<{ pubsub: GossipSub }>,
    meshId: string,
    private readonly bootstrap: string[],
    private readonly log: MeshLogger,
  ) {
    this.peerId = libp2p.peerId.toString();
    this.meshId = meshId;
    const t = topics(meshId);
    this.topicOf = { advert: t.adverts, leave: t.adverts, events: t.events };
    this.kindOfTopic.set(t.adverts, 'advert');
    this.kindOfTopic.set(t.events, 'events');
  }

  async init(reconnectMs: number): Promise<void> {
    const pubsub = this.libp2p.services.pubsub;
    for (const topic of this.kindOfTopic.keys()) {
      pubsub.topicValidators.set(topic, (_peer, msg) => this.validateGossip(topic, msg));
      pubsub.subscribe(topic);
    }
    pubsub.addEventListener('message', (evt) => this.deliverGossip(evt.detail));
    for (const change of ['self:peer:update', 'transport:listening', 'transport:close'] as const) {
      this.libp2p.addEventListener(change, () => {
        this.ownAddrs = undefined;
      });
    }
    this.libp2p.addEventListener('peer:connect', (evt) => this.emit('peer:connect', evt.detail.toString()));
    this.libp2p.addEventListener('peer:disconnect', (evt) => this.emit('peer:disconnect', evt.detail.toString()));
    this.libp2p.addEventListener('peer:discovery', (evt) => {
      // mdns finds peers but does not dial them on its own.
      if (this.stopped || this.libp2p.getConnections(evt.detail.id).length > 0) return;
      this.libp2p
        .dial(evt.detail.id)
        .catch((err) => this.log.debug({ err: String(err) }, 'discovered peer not dialable'));
    });
    if (this.bootstrap.length > 0) {
      this.reconnectMs = reconnectMs;
      // Redialled only while one is not connected: a timer of its own would wake an idle node every few seconds.
      this.libp2p.addEventListener('peer:disconnect', (evt) => {
        const peer = evt.detail.toString();
        if (this.bootstrap.some((addr) => this.bootstrapIdOf(addr) === peer)) this.redialBootstrapSoon();
      });
      await this.dialBootstrap();
      if (!this.bootstrapConnected()) this.redialBootstrapSoon();
    }
  }

  /** How long after a failed or lost bootstrap connection it is dialled again; set by init(). */
  private reconnectMs = 0;

  private redialBootstrapSoon(): void {
    if (this.stopped || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(async () => {
      await this.dialBootstrap();
      this.reconnectTimer = undefined;
      if (!this.bootstrapConnected()) this.redialBootstrapSoon();
    }, this.reconnectMs);
    this.reconnectTimer.unref();
  }

  /** Whether each bootstrap address is this node or a peer connected now (an address never reached is not). */
  private bootstrapConnected(): boolean {
    const connected = new Set(this.connectedPeers());
    return this.bootstrap.every((addr) => {
      const id = this.bootstrapIdOf(addr);
      return id !== undefined && (id === this.peerId || connected.has(id));
    });
  }

  private bootstrapIdOf(addr: string): string | undefined {
    return (
      multiaddr(addr)
        .getComponents()
        .find((c) => c.name === 'p2p')?.value ?? this.bootstrapPeers.get(addr)
    );
  }

  /** Bootstrap address -> the peer id found there, so an address given without /p2p/<id> is not redialled. */
  private readonly bootstrapPeers = new Map<string, string>();

  private async dialBootstrap(): Promise<void> {
    const connectedPeers = new Set(this.connectedPeers());
    await Promise.all(
      this.bootstrap.map(async (addr) => {
        const id = this.bootstrapIdOf(addr);
        if (id === this.peerId) return;
        if (id && connectedPeers.has(id)) return;
        try {
          const connection = await this.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(5_000) });
          this.bootstrapPeers.set(addr, connection.remotePeer.toString());
        } catch (err) {
          if (!this.stopped) this.log.debug({ addr, err: String(err) }, 'bootstrap peer not reachable yet');
        }
      }),
    );
  }

  private validateGossip(topic: string, msg: GossipsubMessage): TopicValidatorResult {
    if (msg.type !== 'signed') return this.rejectGossip('unknown', { reason: 'bad-signature', detail: 'unsigned' });
    const signer = msg.from.toString();
    const decoded = decodeMessage(msg.data);
    if (!decoded.ok) return this.rejectGossip(signer, decoded.rejection);
    const m = decoded.message;
    const expected = this.kindOfTopic.get(topic);
    if (!GOSSIP_KINDS.has(m.kind) || (m.kind === 'events') !== (expected === 'events')) {
      return this.rejectGossip(signer, { reason: 'unknown-kind', kind: m.kind, detail: `kind ${m.kind} on ${topic}` });
    }
    // The envelope's sender, and a node id inside an advert or leave, must be whoever signed it.
    const claimed = m.kind === 'advert' || m.kind === 'leave' ? m.body.nodeId : m.from;
    if (m.from !== signer || claimed !== signer) {
      return this.rejectGossip(signer, {
        reason: 'sender-mismatch',
        kind: m.kind,
        detail: `signed by ${signer}, claims ${claimed}`,
      });
    }
    this.validated.set(msg, m as GossipMessage);
    return TopicValidatorResult.Accept;
  }

  private rejectGossip(peer: string, rejection: Rejection): TopicValidatorResult {
    this.emit('rejected', rejection, peer);
    return TopicValidatorResult.Reject;
  }

  private deliverGossip(msg: GossipsubMessage): void {
    const envelope = this.validated.get(msg);
    if (!envelope || msg.type !== 'signed') return;
    this.emit('message', envelope, msg.from.toString());
  }

  /** Called by gossipsub's metrics hook for messages it drops before our validator sees them. */
  countDroppedGossip(error: string): void {
    const reason = /signature|key|from|seqno/i.test(error) ? 'bad-signature' : 'not-envelope';
    this.emit('rejected', { reason, detail: `gossipsub: ${error}` }, 'gossipsub');
  }

  private emit<E extends keyof MeshEvents>(event: E, ...args: Parameters<MeshEvents[E]>): void {
    for (const listener of this.listeners[event]) {
      try {
        (listener as (...a: unknown[]) => void)(...args);
      } catch (err) {
        // A listener's bug must not stop delivery to the others, nor escape into libp2p.
        this.log.warn({ event, err: String(err) }, 'mesh event listener threw');
      }
    }
  }

  on<E extends keyof MeshEvents>(event: E, listener: MeshEvents[E]): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  addrs(): string[] {
    // Every advert carries them, and libp2p rebuilds the list on each call (~0.03% of a core, idle): kept until
    // libp2p says they changed, or 30 s have passed.
    const now = Date.now();
    if (!this.ownAddrs || now - this.ownAddrs.at > 30_000) {
      this.ownAddrs = { at: now, addrs: this.libp2p.getMultiaddrs().map((ma) => ma.toString()) };
    }
    return [...this.ownAddrs.addrs];
  }

  private ownAddrs: { at: number; addrs: string[] } | undefined;

  connectedPeers(): string[] {
    return [...new Set(this.libp2p.getConnections().map((c) => c.remotePeer.toString()))];
  }

  private nextSeq(kind: MessageKind): number {
    // Start from the clock so a restarted node's counter keeps rising.
    const next = Math.max((this.seq.get(kind) ?? 0) + 1, Date.now() * 1000);
    this.seq.set(kind, next);
    return next;
  }

  async publish<K extends GossipKind>(kind: K, body: BodyOf<K>): Promise<void> {
    const bytes = encodeMessage(kind, this.peerId, this.nextSeq(kind), body);
    await this.libp2p.services.pubsub.publish(this.topicOf[kind], bytes);
  }

  /**
   * Serves a direct protocol. A peer keeps one stream open and sends requests on it back to back; each is
   * decoded, checked and answered in order, one reply per request. A request that fails validation, or that the
   * handler declines, resets the stream (the requester sees an error), and the daemon goes on.
   */
  async handle(protocol: string, handler: RequestHandler): Promise<void> {
    await this.serveFrames(protocol, async (message, peer, framed, signal) => {
      // The signal ends with the stream: a handler still working when the peer goes away can stop.
      const reply = await handler(message, peer, signal);
      if (!reply) throw new Error('no reply');
      framed.send(encodeMessage(reply.kind, this.peerId, this.nextSeq(reply.kind), reply.body));
    });
  }

  /** Serves a one-way protocol: messages from a peer, in order, with no reply (see notify). */
  async listen(protocol: string, onMessage: (message: Message, peer: string) => void): Promise<void> {
    await this.serveFrames(protocol, async (message, peer) => onMessage(message, peer));
  }

  private async serveFrames(
    protocol: string,
    serve: (message: Message, peer: string, framed: FramedStream, signal: AbortSignal) => Promise<void>,
  ): Promise<void> {
    await this.libp2p.handle(
      protocol,
      (stream, connection) => {
        const peer = connection.remotePeer.toString();
        const closed = new AbortController();
        let queue = Promise.resolve();
        // Requests waiting on this stream. Past the bound, reading pauses (yamux stops the sender) until the
        // handler catches up: a peer pipelining faster than we answer cannot make us buffer without end.
        let queued = 0;
        let paused = false;
        const framed = new FramedStream(
          stream,
          MAX_MESSAGE_BYTES,
          (frame) => {
            if (++queued >= MAX_QUEUED_REQUESTS && !paused) {
              paused = true;
              stream.pause();
            }
            queue = queue.then(async () => {
              try {
                if (!framed.isOpen) return;
                const decoded = decodeMessage(frame);
                if (!decoded.ok) {
                  this.emit('rejected', decoded.rejection, peer);
                  throw new Error(`rejected: ${decoded.rejection.reason}`);
                }
                if (decoded.message.from !== peer) {
                  this.emit('rejected', { reason: 'sender-mismatch', detail: `stream from ${peer}` }, peer);
                  throw new Error('rejected: sender-mismatch');
                }
                await serve(decoded.message, peer, framed, closed.signal);
              } catch (err) {
                this.log.debug({ protocol, peer, err: String(err) }, 'direct request failed');
                framed.abort(err instanceof Error ? err : new Error(String(err)));
              } finally {
                if (--queued < MAX_QUEUED_REQUESTS / 2 && paused) {
                  paused = false;
                  stream.resume();
                }
              }
            });
          },
          () => closed.abort(),
        );
      },
      { maxInboundStreams: 64 },
    );
  }

  /** Open outbound streams, one per protocol and peer, made on first use and again after one fails. */
  private readonly outbound = new Map<string, Promise<Outbound>>();
  /** The same streams once open, so a message can go out in the caller's own turn, with no await before it. */
  private readonly opened = new Map<string, Outbound>();
  /** Per stream, the callers waiting for it to open; while any wait, later callers queue behind them. */
  private readonly waitingFor = new Map<string, number>();

  /**
   * Runs `use` with the stream to the peer: at once when it is open and nobody waits for it (the bytes then leave
   * before the caller's next step: awaiting an already open stream put every request behind whatever else was
   * ready to run, ~0.3 ms on the assign path), else once it is open, in the order callers asked.
   */
  private withStream<T>(
    peer: string,
    protocol: string,
    signal: AbortSignal | undefined,
    use: (o: Outbound) => T | Promise<T>,
  ): Promise<T> {
    const key = `${protocol} ${peer}`;
    const open = this.opened.get(key);
    if (open?.framed.isOpen && !this.waitingFor.has(key)) {
      try {
        return Promise.resolve(use(open));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    this.waitingFor.set(key, (this.waitingFor.get(key) ?? 0) + 1);
    const done = () => {
      const n = this.waitingFor.get(key)! - 1;
      if (n === 0) this.waitingFor.delete(key);
      else this.waitingFor.set(key, n);
    };
    return this.openOutboundTo(peer, protocol, signal).then(
      (o) => {
        try {
          return use(o);
        } finally {
          done();
        }
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
  }

  private outboundTo(peer: string, protocol: string, signal?: AbortSignal): Promise<Outbound> {
    const key = `${protocol} ${peer}`;
    const existing = this.outbound.get(key);
    if (existing) {
      return existing.then(
        (o) => (o.framed.isOpen ? o : this.openOutbound(key, peer, protocol, signal)),
        () => this.openOutbound(key, peer, protocol, signal),
      );
    }
    return this.openOutbound(key, peer, protocol, signal);
  }

  /**
   * The kept-open stream, open at the moment this resolves. A stream can close between the check in outboundTo
   * and the caller's turn (its close event runs in between); then one fresh stream is opened.
   */
  private async openOutboundTo(peer: string, protocol: string, signal?: AbortSignal): Promise<Outbound> {
    const first = await this.outboundTo(peer, protocol, signal);
    if (first.framed.isOpen) return first;
    const second = await this.outboundTo(peer, protocol, signal);
    if (!second.framed.isOpen) throw new Error(`the ${protocol} stream to ${peer} closed as it opened`);
    return second;
  }

  /** Opens the stream; without a signal, gives up after OPEN_TIMEOUT_MS. */
  private openOutbound(key: string, peer: string, protocol: string, signal?: AbortSignal): Promise<Outbound> {
    const opening = (async () => {
      const options = { signal: signal ?? AbortSignal.timeout(OPEN_TIMEOUT_MS) };
      const stream = await this.libp2p.dialProtocol(peerIdFromString(peer), protocol, options).catch((err) => {
        throw (err as Error).name === 'UnsupportedProtocolError' ? new ProtocolNotServedError(peer, protocol) : err;
      });
      const pending: Pending[] = [];
      // Set once the stream exists; its close handler reads it.
      let outbound: Outbound | undefined;
      const framed = new FramedStream(
        stream,
        MAX_MESSAGE_BYTES,
        (frame) => {
          const waiter = pending.shift();
          if (!waiter) throw new Error(`${peer} sent a reply nobody asked for`);
          waiter.done();
          const decoded = decodeMessage(frame);
          if (!decoded.ok) {
            this.emit('rejected', decoded.rejection, peer);
            waiter.reject(
              new Error(`reply from ${peer} rejected: ${decoded.rejection.reason} (${decoded.rejection.detail})`),
            );
          } else if (decoded.message.from !== peer) {
            waiter.reject(new Error(`reply claims to be from ${decoded.message.from}`));
          } else waiter.resolve(decoded.message);
        },
        (err) => {
          if (this.outbound.get(key) === opening) this.outbound.delete(key);
          if (this.opened.get(key) === outbound) this.opened.delete(key);
          for (const waiter of pending.splice(0)) {
            waiter.done();
            waiter.reject(err);
          }
        },
      );
      outbound = { framed, pending };
      this.opened.set(key, outbound);
      return outbound;
    })();
    this.outbound.set(key, opening);
    opening.catch(() => {
      if (this.outbound.get(key) === opening) this.outbound.delete(key);
    });
    return opening;
  }

  async request<K extends MessageKind>(
    peer: string,
    protocol: string,
    kind: K,
    body: BodyOf<K>,
    options: RequestOptions = {},
  ): Promise<Message> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const bytes = encodeMessage(kind, this.peerId, this.nextSeq(kind), body);
    return this.withStream(peer, protocol, signal, ({ framed, pending }) => {
      signal.throwIfAborted();
      return new Promise<Message>((resolve, reject) => {
        // Replies come in request order: a request given up on would leave the ones behind it answered by the
        // wrong reply, so giving up resets the stream (and fails what waits on it; the next request reopens it).
        const onAbort = () => {
          const reason = options.signal?.aborted
            ? options.signal.reason
            : new Error(`${kind} request to ${peer} got no reply within ${timeoutMs} ms`);
          framed.abort(reason instanceof Error ? reason : new Error(String(reason)));
        };
        // A stream closes once and rejects the waiters it holds then: one that closed since it was handed out
        // would never answer this request, so fail it now.
        if (!framed.isOpen) {
          reject(new Error(`the ${protocol} stream to ${peer} closed before the request was sent`));
          return;
        }
        signal.addEventListener('abort', onAbort, { once: true });
        pending.push({ resolve, reject, done: () => signal.removeEventListener('abort', onAbort) });
        framed.send(bytes);
      });
    });
  }

  /**
   * Sends one message to a peer's one-way protocol (see listen) on the stream kept open for it, without waiting
   * for an answer. Best effort: a message in flight when the stream breaks is lost, so use it only where
   * something else (gossip, anti-entropy) guarantees delivery.
   */
  async notify<K extends MessageKind>(peer: string, protocol: string, kind: K, body: BodyOf<K>): Promise<void> {
    await this.sendOneWay(peer, protocol, encodeMessage(kind, this.peerId, this.nextSeq(kind), body));
  }

  notifyEach<K extends MessageKind>(
    peers: readonly string[],
    protocol: string,
    kind: K,
    body: BodyOf<K>,
  ): Array<Promise<void>> {
    const bytes = encodeMessage(kind, this.peerId, this.nextSeq(kind), body);
    return peers.map((peer) => this.sendOneWay(peer, protocol, bytes));
  }

  private sendOneWay(peer: string, protocol: string, bytes: Uint8Array): Promise<void> {
    // No timeout signal per message (each one is a timer): only opening the stream can wait, and it has its own.
    return this.withStream(peer, protocol, undefined, ({ framed }) => framed.send(bytes));
  }

  async dial(addr: string, signal?: AbortSignal): Promise<void> {
    await this.libp2p.dial(multiaddr(addr), { signal: signal ?? AbortSignal.timeout(10_000) });
  }

  async hangUp(peer: string): Promise<void> {
    await this.libp2p.hangUp(peerIdFromString(peer));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    await this.libp2p.stop();
  }
}

/** How long opening a kept-open stream may take when the caller gives no signal of its own. */
const OPEN_TIMEOUT_MS = 10_000;

const hex = (bytes: Uint8Array | undefined) =>
  bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') : '';

/** Builds, starts and joins a mesh node: tcp + pnet + noise + yamux, identify, ping and signed gossipsub. */
export async function createMeshNode(
  init: MeshNodeInit,
): Promise<MeshNode & { libp2p: Libp2p<{ pubsub: GossipSub }> }> {
  const log = init.logger ?? silent;
  const meshId = init.meshId ?? meshIdFromKey(init.psk);
  let node: Libp2pMeshNode | undefined;
  const gossipFactory = gossipsub({
    globalSignaturePolicy: 'StrictSign',
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
    // Messages are validated before they are forwarded, so a bad one stops at the first honest hop.
    asyncValidation: false,
    maxInboundDataLength: MAX_MESSAGE_BYTES + 64 * 1024,
    metricsRegister: invalidGossipBridge((error) => node?.countDroppedGossip(error)),
    metricsTopicStrToLabel: new Map(),
    // Gossipsub's IP-colocation penalty defends open networks against sybils by graylisting peers that share an
    // address. A hermes mesh is closed by its private key, and many nodes legitimately share one address
    // (one host, one NAT): with the penalty on, the 11th node on a host is silently ignored.
    scoreParams: { IPColocationFactorWeight: 0 },
    // Duplicates (every message reaches a node once per mesh peer) are dropped on sender + seqno before the
    // signature check; only messages that passed the check enter that cache, so a forgery cannot shadow a real one.
    fastMsgIdFn: (msg) => `${hex(msg.from)}:${hex(msg.seqno)}`,
    // IDONTWANT saves bandwidth on large messages; on ~1 KB adverts it only doubles the packets sent.
    idontwantMinDataSize: 16 * 1024,
    ...init.gossip,
  });
  const libp2p = await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionProtector: preSharedKey({ psk: init.psk }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Loaded only when asked for: most meshes join by bootstrap address, and every module costs idle memory.
    peerDiscovery: init.mdns ? [(await import('@libp2p/mdns')).mdns({ serviceTag: `hermes-${meshId}.local` })] : [],
    connectionMonitor: { pingInterval: init.pingIntervalMs ?? 60_000 },
    connectionManager: {
      maxConnections: init.maxConnections ?? 200,
      // libp2p's default (5 new connections per second per remote host) starves a mesh whose nodes share
      // a host or a NAT address; pnet already limits who can connect at all.
      inboundConnectionThreshold: 50,
      maxIncomingPendingConnections: 50,
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: init.wrapGossipComponents
        ? (components: Parameters<typeof gossipFactory>[0]) => gossipFactory(init.wrapGossipComponents!(components))
        : gossipFactory,
    },
  });
  node = new Libp2pMeshNode(libp2p, meshId, init.bootstrap ?? [], log);
  await node.init(init.reconnectMs ?? 2_000);
  return node as Libp2pMeshNode & { libp2p: Libp2p<{ pubsub: GossipSub }> };
}
