import './polyfill.js';

export { KeyFileError, loadOrCreateIdentity, loadOrCreateMeshKey, meshIdFromKey, parseMeshKey } from './keys.js';
export {
  createMembership,
  type Member,
  type MemberState,
  type Membership,
  type MembershipEvent,
  type MembershipInit,
} from './membership.js';
export { createMeshNode, type MeshLogger, type MeshNodeInit } from './node.js';
export type { GossipKind, GossipMessage, MeshEvents, MeshNode, RequestHandler, RequestOptions } from './types.js';
