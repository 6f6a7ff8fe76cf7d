import type { BodyOf, Envelope, Message, MessageKind, Rejection } from '@hermes-mesh/protocol';

/** Kinds that travel on gossipsub topics; the rest go over direct streams. */
export type GossipKind = 'advert' | 'leave' | 'events';

/** A validated gossip message, discriminated by kind. */
export type GossipMessage = { [K in GossipKind]: Envelope<K> }[GossipKind];

export interface RequestOptions {
  signal?: AbortSignal;
  /** Default 10 s. */
  timeoutMs?: number;
}

/**
 * A direct request handler: gets one validated message from a peer and answers with one message.
 * Throwing (or returning undefined) closes the stream without an answer; the requester sees an error.
 */
export type RequestHandler = (
  request: Message,
  peer: string,
  signal: AbortSignal,
) => Promise<{ kind: MessageKind; body: BodyOf<MessageKind> } | undefined>;

export interface MeshEvents {
  /** A validated gossip message from another node. */
  message: (message: GossipMessage, peer: string) => void;
  /** A message that failed validation or its signature check: already counted. */
  rejected: (rejection: Rejection, peer: string) => void;
  'peer:connect': (peer: string) => void;
  'peer:disconnect': (peer: string) => void;
}

export interface MeshNode {
  /** This node's libp2p peer id, the node id used everywhere in hermes. */
  readonly peerId: string;
  readonly meshId: string;
  /** Addresses others can dial, as multiaddr strings including /p2p/<peerId>. */
  addrs(): string[];
  connectedPeers(): string[];
  /** Publishes on the kind's topic; resolves even when no peer listens yet. */
  publish<K extends GossipKind>(kind: K, body: BodyOf<K>): Promise<void>;
  on<E extends keyof MeshEvents>(event: E, listener: MeshEvents[E]): () => void;
  /**
   * Serves a direct protocol (e.g. PROTOCOLS.ledgerSync): one reply per request, in order. A requester keeps
   * one stream open per peer and protocol, so requests cost no stream set-up.
   */
  handle(protocol: string, handler: RequestHandler): Promise<void>;
  /** Serves a one-way protocol: validated messages from peers, in the order each peer sent them, no reply. */
  listen(protocol: string, onMessage: (message: Message, peer: string) => void): Promise<void>;
  /**
   * Sends a message to a peer's one-way protocol without waiting. Best effort (lost if the stream breaks in
   * flight): for fast paths that gossip or anti-entropy back up.
   */
  notify<K extends MessageKind>(peer: string, protocol: string, kind: K, body: BodyOf<K>): Promise<void>;
  /**
   * notify to each of `peers`, the message encoded once: what fans out (a ledger push) costs one encode, not one
   * per peer. Throws MessageTooLargeError at once; one promise per peer for its send, in the order given.
   */
  notifyEach<K extends MessageKind>(
    peers: readonly string[],
    protocol: string,
    kind: K,
    body: BodyOf<K>,
  ): Array<Promise<void>>;
  /** Sends one message to a peer over a direct protocol and returns the validated reply. */
  request<K extends MessageKind>(
    peer: string,
    protocol: string,
    kind: K,
    body: BodyOf<K>,
    options?: RequestOptions,
  ): Promise<Message>;
  dial(multiaddr: string, signal?: AbortSignal): Promise<void>;
  hangUp(peer: string): Promise<void>;
  stop(): Promise<void>;
}
