import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { S3ArtifactStore, type S3Settings } from './artifacts-s3.js';

/** A stored object: where it is and what it must hash to. */
export interface StoredArtifact {
  uri: string;
  sha256: string;
  size: number;
}

/** Per-call options of an artifact store. */
export interface ArtifactStoreOptions {
  /** Abandons the upload or download. */
  signal?: AbortSignal;
}

/** Where the worker keeps transcripts and reports: files (`file://`) or S3 (`s3://`, artifacts-s3.ts). */
export interface ArtifactStore {
  put(key: string, body: Buffer | string, options?: ArtifactStoreOptions): Promise<StoredArtifact>;
  get(key: string, options?: ArtifactStoreOptions): Promise<Buffer>;
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

  async put(key: string, body: Buffer | string, options: ArtifactStoreOptions = {}): Promise<StoredArtifact> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    await writeFile(path, data, { signal: options.signal });
    return { uri: this.uri(key), sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
  }

  get(key: string, options: ArtifactStoreOptions = {}): Promise<Buffer> {
    return readFile(this.path(key), { signal: options.signal });
  }

  uri(key: string): string {
    const href = pathToFileURL(join(this.root, key)).href;
    return key.endsWith('/') && !href.endsWith('/') ? href + '/' : href;
  }
}

/** What opening a store needs: the parsed worker configuration has these fields. */
export interface ArtifactStoreConfig {
  artifactStoreUrl: string;
  /** S3 client settings for `s3://` URLs (WorkerConfig.artifactS3). */
  artifactS3?: S3Settings;
}

/** Opens the store ARTIFACT_STORE_URL names: `file://` directory or `s3://bucket/optional/prefix`. */
export function openArtifactStore(cfg: ArtifactStoreConfig): ArtifactStore {
  const url = cfg.artifactStoreUrl;
  if (url.startsWith('file:')) return new FileArtifactStore(url);
  if (url.startsWith('s3:')) return new S3ArtifactStore(url, cfg.artifactS3);
  throw Object.assign(new Error(`ARTIFACT_STORE_URL scheme not supported: ${url} (use file:// or s3://)`), { expected: true });
}
