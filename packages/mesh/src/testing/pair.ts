import { generateKeyPair } from '@libp2p/crypto/keys';
import { generateKey } from '@libp2p/pnet';
import { parseMeshKey } from '../keys.js';
import { createMeshNode } from '../node.js';

type TestNode = Awaited<ReturnType<typeof createMeshNode>>;

/**
 * The mesh nodes of one test file: `pair()` starts two on loopback under a fresh mesh key (not yet connected);
 * `stopAll` (after each test) stops every node still running.
 */
export function testMeshNodes() {
  const running: TestNode[] = [];
  return {
    async pair(): Promise<[TestNode, TestNode]> {
      const psk = new Uint8Array(95);
      generateKey(psk);
      const meshKey = parseMeshKey(psk);
      const a = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), psk: meshKey });
      const b = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), psk: meshKey });
      running.push(a, b);
      return [a, b];
    },
    async stopAll(): Promise<void> {
      await Promise.all(running.splice(0).map((n) => n.stop().catch(() => {})));
    },
  };
}
