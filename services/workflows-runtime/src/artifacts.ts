import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A stored object: where it is and what it must hash to. */
export interface StoredArtifact {
  uri: string;
  sha256: string;
  size: number;
}

/** Where the worker keeps transcripts and reports. Issue-sized seam: S3 plugs in here. */
export interface ArtifactStore {
  put(key: string, body: Buffer | string): Promise<StoredArtifact>;
  get(key: string): Promise<Buffer>;
  /** URI of a key or key prefix, for status updates and summaries. */
  uri(key: string): string;
}

/** Artifacts as files under a root directory (`file://` ARTIFACT_STORE_URL). */
export class FileArtifactStore implements ArtifactStore {
  private readonly root: string;

  constructor(rootUrl: string) {
    this.root = fileURLToPath(rootUrl);
  }

  private path(key: string): string {
    if (key.split('/').some((part) => part === '..' || part === '')) throw new Error(`invalid artifact key "${key}"`);
    return join(this.root, key);
  }

  async put(key: string, body: Buffer | string): Promise<StoredArtifact> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    await writeFile(path, data);
    return { uri: this.uri(key), sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
  }

  get(key: string): Promise<Buffer> {
    return readFile(this.path(key));
  }

  uri(key: string): string {
    const href = pathToFileURL(join(this.root, key)).href;
    return key.endsWith('/') && !href.endsWith('/') ? href + '/' : href;
  }
}

/** Opens the store an ARTIFACT_STORE_URL names. */
export function openArtifactStore(url: string): ArtifactStore {
  if (url.startsWith('file:')) return new FileArtifactStore(url);
  throw Object.assign(new Error(`ARTIFACT_STORE_URL scheme not supported yet: ${url}`), { expected: true });
}
