import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { generateKey } from '@libp2p/pnet';

/** A key file that exists but cannot be used: the message says which file and what to do. */
export class KeyFileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'KeyFileError';
  }
}

async function writeSecretFile(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Write beside and rename, so a crash never leaves a half-written key that would change the node's identity.
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bytes, { mode: 0o600, flag: 'wx' });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(path, `cannot read: ${(err as Error).message}`);
  }
}

/** The node's Ed25519 identity: loaded from the file, or created there (0600) on first start. */
export async function loadOrCreateIdentity(path: string): Promise<{ key: PrivateKey; created: boolean }> {
  const existing = await readIfExists(path);
  if (existing) {
    try {
      return { key: privateKeyFromProtobuf(existing), created: false };
    } catch (err) {
      throw new KeyFileError(
        path,
        `not a libp2p private key (${(err as Error).message}); restore it from a backup, or move it away to start as a new node`,
      );
    }
  }
  const key = await generateKeyPair('Ed25519');
  await writeSecretFile(path, privateKeyToProtobuf(key));
  return { key, created: true };
}

const PSK_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n';

/** Parses a libp2p private-network key file (the go-ipfs swarm.key format). */
export function parseMeshKey(bytes: Uint8Array, path = 'mesh key'): Uint8Array {
  const text = Buffer.from(bytes).toString('utf8');
  const lines = text.split(/\r?\n/);
  if (lines[0] !== '/key/swarm/psk/1.0.0/' || lines[1] !== '/base16/' || !/^[0-9a-fA-F]{64}$/.test(lines[2] ?? '')) {
    throw new KeyFileError(
      path,
      'not a mesh key (expected "/key/swarm/psk/1.0.0/", "/base16/" and 64 hex digits); copy the mesh key file from a node of the mesh',
    );
  }
  // Normalise to exactly what preSharedKey expects, whatever line endings the file had.
  return new TextEncoder().encode(`${PSK_HEADER}${lines[2]!.toLowerCase()}`);
}

/** Loads the private mesh key, or creates a new mesh's key at the path (0600) when the file is missing. */
export async function loadOrCreateMeshKey(path: string): Promise<{ psk: Uint8Array; created: boolean }> {
  const existing = await readIfExists(path);
  if (existing) return { psk: parseMeshKey(existing, path), created: false };
  const psk = new Uint8Array(95);
  generateKey(psk);
  await writeSecretFile(path, psk);
  return { psk: parseMeshKey(psk, path), created: true };
}

/** A short public name for the mesh, derived from its key, that namespaces gossip topics. Reveals nothing of the key. */
export function meshIdFromKey(psk: Uint8Array): string {
  return `m${createHash('sha256').update('hermes-mesh-id').update(psk).digest('hex').slice(0, 12)}`;
}
