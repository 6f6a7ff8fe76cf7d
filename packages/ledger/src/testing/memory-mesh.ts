import type {
  GossipKind,
  GossipMessage,
  MeshEvents,
  MeshNode,
  RequestHandler,
  RequestOptions,
} from '@hermes-mesh/mesh';
import {
  type BodyOf,
  decodeMessage,
  encodeMessage,
  type Message,
  type MessageKind,
  ProtocolNotServedError,
} from '@hermes-mesh/protocol';

/**
 * An in-memory network of MeshNodes for tests and benchmarks: same interface, same codec (every message is
 * encoded, size-capped and validated as on the wire), no sockets. Links can be cut and restored to make
 * partitions; gossip floods each connected component, as a formed gossipsub mesh would.
 */
export interface MemoryNetwork {
  node(peerId: string): MeshNode;
  connect(a: string, b: string): void;
  disconnect(a: string, b: string): void;
  /** Cuts every link of `peer` (it goes offline but keeps its state). */
  isolate(peer: string): void;
  /** Connects every pair of the given peers. */
  connectAll(peers: string[]): void;
}

type Listeners = { [E in keyof MeshEvents]: Set<MeshEvents[E]> };

export interface MemoryNetworkOptions {
  /**
   * Decides whether one gossip message or one-way (notify) message reaches one peer (lossy links in tests);
   * default every message does. Requests and their replies always arrive.
   */
  deliver?: (from: string, to: string, via: 'gossip' | 'direct') => boolean;
  /** How long a gossip or one-way message takes to arrive (default: the next turn of the event loop). */
  delayMs?: number;
}

export function createMemoryNetwork(options: MemoryNetworkOptions = {}): MemoryNetwork {
  const deliver = options.deliver ?? (() => true);
  const nodes = new Map<string, MemoryMeshNode>();
  const links = new Map<string, Set<string>>();
  const linksOf = (peer: string) => {
    let set = links.get(peer);
    if (!set) {
      set = new Set();
      links.set(peer, set);
    }
    return set;
  };

  const network: Network = {
    deliver,
    delayMs: options.delayMs ?? 0,
    neighbours: (peer) => [...linksOf(peer)],
    node(peerId) {
      if (nodes.has(peerId)) throw new Error(`peer ${peerId} already exists`);
      const node = new MemoryMeshNode(peerId, network);
      nodes.set(peerId, node);
      return node;
    },
    get: (peer) => nodes.get(peer),
    connect(a, b) {
      if (a === b || linksOf(a).has(b)) return;
      linksOf(a).add(b);
      linksOf(b).add(a);
      setImmediate(() => {
        nodes.get(a)?.emit('peer:connect', b);
        nodes.get(b)?.emit('peer:connect', a);
      });
    },
    disconnect(a, b) {
      if (!linksOf(a).has(b)) return;
      linksOf(a).delete(b);
      linksOf(b).delete(a);
      nodes.get(a)?.emit('peer:disconnect', b);
      nodes.get(b)?.emit('peer:disconnect', a);
    },
    isolate(peer) {
      for (const other of [...linksOf(peer)]) network.disconnect(peer, other);
    },
    connectAll(peers) {
      for (const a of peers) for (const b of peers) if (a < b) network.connect(a, b);
    },
    reachable(from) {
      const seen = new Set([from]);
      const queue = [from];
      while (queue.length > 0) {
        for (const next of linksOf(queue.shift()!)) {
          if (!seen.has(next)) {
            seen.add(next);
            queue.push(next);
          }
        }
      }
      seen.delete(from);
      return [...seen];
    },
  };
  return network;
}

type Network = MemoryNetwork & {
  deliver(from: string, to: string, via: 'gossip' | 'direct'): boolean;
  readonly delayMs: number;
  reachable(from: string): string[];
  neighbours(peer: string): string[];
  get(peer: string): MemoryMeshNode | undefined;
};

class MemoryMeshNode implements MeshNode {
  readonly meshId = 'memory';
  private readonly listeners: Listeners = {
    message: new Set(),
    rejected: new Set(),
    'peer:connect': new Set(),
    'peer:disconnect': new Set(),
  };
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly oneWay = new Map<string, (message: Message, peer: string) => void>();
  private seq = 0;
  private stopped = false;

  constructor(
    readonly peerId: string,
    private readonly network: Network,
  ) {}

  addrs(): string[] {
    return [`/memory/${this.peerId}`];
  }

  connectedPeers(): string[] {
    return this.stopped ? [] : this.network.neighbours(this.peerId);
  }

  private isNeighbour(peer: string): boolean {
    return this.network.neighbours(this.peerId).includes(peer);
  }

  async publish<K extends GossipKind>(kind: K, body: BodyOf<K>): Promise<void> {
    const bytes = encodeMessage(kind, this.peerId, ++this.seq, body);
    for (const peer of this.network.reachable(this.peerId)) {
      if (!this.network.deliver(this.peerId, peer, 'gossip')) continue;
      this.later(() => this.network.get(peer)?.deliver(bytes, this.peerId));
    }
  }

  /** Runs `arrive` once a message has crossed the network. */
  private later(arrive: () => void): void {
    if (this.network.delayMs > 0) setTimeout(arrive, this.network.delayMs);
    else setImmediate(arrive);
  }

  deliver(bytes: Uint8Array, from: string): void {
    if (this.stopped) return;
    const decoded = decodeMessage(bytes);
    if (!decoded.ok) {
      this.emit('rejected', decoded.rejection, from);
      return;
    }
    this.emit('message', decoded.message as GossipMessage, from);
  }

  on<E extends keyof MeshEvents>(event: E, listener: MeshEvents[E]): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  emit<E extends keyof MeshEvents>(event: E, ...args: Parameters<MeshEvents[E]>): void {
    if (this.stopped) return;
    for (const listener of this.listeners[event]) (listener as (...a: Parameters<MeshEvents[E]>) => void)(...args);
  }

  async handle(protocol: string, handler: RequestHandler): Promise<void> {
    this.handlers.set(protocol, handler);
  }

  async serve(protocol: string, bytes: Uint8Array, from: string): Promise<Uint8Array> {
    const handler = this.handlers.get(protocol);
    if (this.stopped) throw new Error(`${this.peerId} has stopped`);
    if (!handler) throw new ProtocolNotServedError(this.peerId, protocol);
    const decoded = decodeMessage(bytes);
    if (!decoded.ok) throw new Error(`rejected: ${decoded.rejection.reason}`);
    const reply = await handler(decoded.message, from, AbortSignal.timeout(60_000));
    if (!reply) throw new Error('no reply');
    return encodeMessage(reply.kind, this.peerId, ++this.seq, reply.body);
  }

  async listen(protocol: string, onMessage: (message: Message, peer: string) => void): Promise<void> {
    this.oneWay.set(protocol, onMessage);
  }

  listensTo(protocol: string): boolean {
    return this.oneWay.has(protocol);
  }

  /** Delivers a one-way message (see notify). */
  receive(protocol: string, bytes: Uint8Array, from: string): void {
    const listener = this.oneWay.get(protocol);
    if (this.stopped || !listener) return;
    const decoded = decodeMessage(bytes);
    if (decoded.ok) listener(decoded.message, from);
    else this.emit('rejected', decoded.rejection, from);
  }

  async notify<K extends MessageKind>(peer: string, protocol: string, kind: K, body: BodyOf<K>): Promise<void> {
    await this.sendOneWay(peer, protocol, encodeMessage(kind, this.peerId, ++this.seq, body));
  }

  notifyEach<K extends MessageKind>(
    peers: readonly string[],
    protocol: string,
    kind: K,
    body: BodyOf<K>,
  ): Array<Promise<void>> {
    const bytes = encodeMessage(kind, this.peerId, ++this.seq, body);
    return peers.map((peer) => this.sendOneWay(peer, protocol, bytes));
  }

  private async sendOneWay(peer: string, protocol: string, bytes: Uint8Array): Promise<void> {
    const target = this.network.get(peer);
    if (this.stopped || !target || !this.isNeighbour(peer)) throw new Error(`not connected to ${peer}`);
    if (!target.listensTo(protocol)) throw new ProtocolNotServedError(peer, protocol);
    if (this.network.deliver(this.peerId, peer, 'direct'))
      this.later(() => target.receive(protocol, bytes, this.peerId));
  }

  async request<K extends MessageKind>(
    peer: string,
    protocol: string,
    kind: K,
    body: BodyOf<K>,
    _options?: RequestOptions,
  ): Promise<Message> {
    const target = this.network.get(peer);
    if (this.stopped || !target || !this.isNeighbour(peer)) throw new Error(`not connected to ${peer}`);
    const bytes = encodeMessage(kind, this.peerId, ++this.seq, body);
    // A macrotask hop each way, like a real stream: no request completes within the caller's tick.
    await new Promise((resolve) => setImmediate(resolve));
    const replyBytes = await target.serve(protocol, bytes, this.peerId);
    await new Promise((resolve) => setImmediate(resolve));
    const decoded = decodeMessage(replyBytes);
    if (!decoded.ok) throw new Error(`reply from ${peer} rejected: ${decoded.rejection.reason}`);
    return decoded.message;
  }

  async dial(multiaddr: string): Promise<void> {
    this.network.connect(this.peerId, multiaddr.replace('/memory/', ''));
  }

  async hangUp(peer: string): Promise<void> {
    this.network.disconnect(this.peerId, peer);
  }

  async stop(): Promise<void> {
    this.network.isolate(this.peerId);
    this.stopped = true;
  }
}
