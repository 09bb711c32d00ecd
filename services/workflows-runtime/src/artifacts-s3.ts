import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ArtifactStore, ArtifactStoreOptions, StoredArtifact } from './artifacts.js';

/** How to reach S3 (WorkerConfig.artifactS3 has this shape). */
export interface S3Settings {
  /** S3-compatible endpoint (MinIO, SeaweedFS, …); unset means AWS itself. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /** Unset: the AWS SDK's default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface S3ArtifactStoreOptions {
  /** Bodies larger than this go up as a multipart upload. Default 8 MiB. */
  multipartThreshold?: number;
  /** Size of each multipart part (S3's minimum is 5 MiB). Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded in parallel. Default 4. */
  queueSize?: number;
}

const MiB = 1024 * 1024;
/** Object metadata key holding the hex sha256 of the body (`x-amz-meta-sha256` on the wire). */
const SHA256_METADATA = 'sha256';

function checkKey(key: string): void {
  if (key.split('/').some((part) => part === '..' || part === '')) throw new Error(`invalid artifact key "${key}"`);
}

/** Parses `s3://bucket/optional/prefix` into the bucket and a prefix that is empty or ends with `/`. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  // By hand, not with `URL`: it would resolve `a/../b` to `b` instead of letting it be rejected.
  const match = /^s3:\/\/([^/?#@:\s]+)(\/[^?#]*)?$/.exec(url);
  if (!match) throw new Error(`invalid artifact store URL "${url}": expected s3://bucket/optional/prefix`);
  let path: string;
  try {
    path = decodeURIComponent(match[2] ?? '');
  } catch {
    throw new Error(`invalid artifact store URL "${url}": bad percent-encoding`);
  }
  path = path.replace(/^\//, '').replace(/\/$/, '');
  if (path !== '') checkKey(path);
  return { bucket: match[1]!, prefix: path === '' ? '' : `${path}/` };
}

/**
 * Artifacts as objects in an S3 bucket (`s3://bucket/prefix` ARTIFACT_STORE_URL). Every object carries
 * the sha256 of its body as metadata, and `get` refuses a body that does not hash to it.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(url: string, settings?: S3Settings, options: S3ArtifactStoreOptions = {}) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Url(url));
    this.client = new S3Client({
      endpoint: settings?.endpoint,
      region: settings?.region ?? 'us-east-1',
      forcePathStyle: settings?.forcePathStyle ?? false,
      credentials: settings?.credentials,
      // S3-compatible servers (SeaweedFS, MinIO, …) do not all understand the flexible checksums the
      // SDK adds by default; integrity is checked end to end through the sha256 metadata instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.partSize = Math.max(options.partSize ?? 8 * MiB, 5 * MiB);
    this.multipartThreshold = options.multipartThreshold ?? this.partSize;
    this.queueSize = options.queueSize ?? 4;
  }

  /** The object key of an artifact key. */
  objectKey(key: string): string {
    checkKey(key);
    return this.prefix + key;
  }

  async put(key: string, body: Buffer | string, options: ArtifactStoreOptions = {}): Promise<StoredArtifact> {
    const objectKey = this.objectKey(key);
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    const sha256 = createHash('sha256').update(data).digest('hex');
    const params = { Bucket: this.bucket, Key: objectKey, Body: data, Metadata: { [SHA256_METADATA]: sha256 } };
    const { signal } = options;
    signal?.throwIfAborted();
    try {
      if (data.length <= this.multipartThreshold) {
        await this.client.send(new PutObjectCommand({ ...params, ContentLength: data.length }), { abortSignal: signal });
      } else {
        const upload = new Upload({ client: this.client, params, partSize: this.partSize, queueSize: this.queueSize, leavePartsOnError: false });
        const abort = () => void upload.abort();
        signal?.addEventListener('abort', abort, { once: true });
        try {
          await upload.done();
        } finally {
          signal?.removeEventListener('abort', abort);
        }
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new Error(`cannot store artifact ${this.uri(key)}: ${(err as Error).message}`, { cause: err });
    }
    return { uri: this.uri(key), sha256, size: data.length };
  }

  async get(key: string, options: ArtifactStoreOptions = {}): Promise<Buffer> {
    const objectKey = this.objectKey(key);
    const { signal } = options;
    let data: Buffer;
    let expected: string | undefined;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }), { abortSignal: signal });
      if (!res.Body) throw new Error('the response has no body');
      data = Buffer.from(await res.Body.transformToByteArray());
      expected = res.Metadata?.[SHA256_METADATA];
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new Error(`cannot read artifact ${this.uri(key)}: ${(err as Error).message}`, { cause: err });
    }
    if (!expected) throw new Error(`artifact ${this.uri(key)} has no sha256 metadata (x-amz-meta-sha256); it was not written by the artifact store`);
    const actual = createHash('sha256').update(data).digest('hex');
    if (actual !== expected.toLowerCase()) {
      throw Object.assign(
        new Error(`artifact ${this.uri(key)} failed its checksum: stored sha256 ${expected}, downloaded ${data.length} bytes hash to ${actual}`),
        { code: 'ARTIFACT_CHECKSUM_MISMATCH', key },
      );
    }
    return data;
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${this.prefix}${key}`;
  }

  /** Closes the client's connections. */
  destroy(): void {
    this.client.destroy();
  }
}
