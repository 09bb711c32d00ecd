import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ameideHome, commaList, defaultWorkspaceDir, parseEnv, processEnv, url, type Env } from './env.js';
import { policySchema, toSandboxPolicy, type SandboxPolicy } from './policy.js';
import { loadTelemetryConfig } from './telemetry.js';
import { temporalSchema, toTemporalConfig, type TemporalConfig } from './temporal.js';

const SECRET_PREFIX = 'AMEIDE_SECRET_';

/** Settings of the Temporal worker (`services/workflows-runtime`). */
export interface WorkerConfig {
  apiUrl: string;
  serviceToken: string;
  temporal: TemporalConfig;
  workspaceDir: string;
  /** `file://` directory or `s3://bucket/optional/prefix`. */
  artifactStoreUrl: string;
  /** How to reach S3; set when `artifactStoreUrl` is an `s3://` URL. */
  artifactS3?: ArtifactS3Config;
  /** The PATH handed to commands the worker runs. */
  commandPath: string;
  /**
   * Secret values the worker holds, from `AMEIDE_SECRET_<TENANT>__<NAME>` variables, keyed by the
   * part after `AMEIDE_SECRET_`. Definitions reference them by name; values never leave the worker.
   */
  secrets: Record<string, string>;
  /** Worktrees of failed runs are kept this long for a person to look at, then pruned. */
  worktreeTtlHours: number;
  /** New runs are refused while the workspace disk has less free space than this. */
  minFreeDiskMb: number;
  /** The operator's policy over definitions' sandbox settings (enforced again on every run). */
  policy: SandboxPolicy;
  /** CPUs' worth of time a run's command may use (its cgroup's CPU quota). */
  runCpus: number;
  /** Disk a run's sandbox may fill (worktree, HOME and temp dirs of its phases), in MB; 0 = no quota. */
  runDiskMb: number;
  /** Size of a tenant's package caches above which the least recently used entries are removed (MB). */
  cacheQuotaMb: number;
  /** The global git configuration of the worker's own git (credentials for pushes); `/dev/null` = none. */
  gitConfig: string;
  /**
   * Longest a single git transfer or git step may take (the mirror's fetch, the sandbox's checkout
   * and export, verifying the import, the push), in seconds. Sized for large repositories.
   */
  gitTimeoutSeconds: number;
  /**
   * Networks (CIDR) the egress proxy may connect to besides public unicast addresses, e.g. an
   * internal registry mirror. Never needed for public registries.
   */
  egressExtraNetworks: string[];
  /** Host names the egress proxy resolves to a fixed address (AMEIDE_EGRESS_RESOLVE, like curl's --resolve). */
  egressResolve: Record<string, string>;
  /** How long a local preview superseded by a newer one of its work item keeps running, in seconds. */
  previewGraceSeconds: number;
  /** The address the preview router reaches this worker's forwarded preview ports on (they listen there). */
  previewHost: string;
  /** Lines of a command's output a phase's status update carries (`output_tail`, within its byte limit). */
  outputTailLines: number;
  /** Where the LangChain agent's spans are sent (the OTLP/HTTP traces URL of OTEL_EXPORTER_OTLP_*); undefined: nowhere. */
  agentSpansUrl?: string;
  home: string;
}

/** The S3 client settings of an `s3://` artifact store (standard AWS variable names). */
export interface ArtifactS3Config {
  /** S3-compatible endpoint (MinIO, SeaweedFS, …); unset means AWS itself. */
  endpoint?: string;
  region: string;
  /** `http://host/bucket/key` instead of `http://bucket.host/key`; what S3-compatible servers want. */
  forcePathStyle: boolean;
  /** Unset: the AWS SDK's default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

const bool = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((v) => v === 'true' || v === '1');

/** The standard AWS variables an S3 client reads (shared by the worker and the CLI). */
const s3Schema = z.object({
  AWS_ENDPOINT_URL_S3: url(['http:', 'https:']).optional(),
  AWS_ENDPOINT_URL: url(['http:', 'https:']).optional(),
  AWS_REGION: z.string().default('us-east-1'),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  AWS_SESSION_TOKEN: z.string().optional(),
  AMEIDE_S3_FORCE_PATH_STYLE: bool.optional(),
});

function requireKeyPair(e: z.infer<typeof s3Schema>, ctx: z.RefinementCtx): void {
  if (Boolean(e.AWS_ACCESS_KEY_ID) !== Boolean(e.AWS_SECRET_ACCESS_KEY)) {
    const missing = e.AWS_ACCESS_KEY_ID ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY together' });
  }
}

const schema = z
  .object({
    AMEIDE_API_URL: url(['http:', 'https:']).default('http://127.0.0.1:8080'),
    AMEIDE_SERVICE_TOKEN: z.string().min(16, 'must be the worker service credential (16+ characters)'),
    AMEIDE_WORKSPACE_DIR: z.string().optional(),
    ARTIFACT_STORE_URL: url(['file:', 's3:'])
      .refine((s) => !s.startsWith('s3:') || new URL(s).host !== '', 'an s3: URL must name a bucket: s3://bucket/optional/prefix')
      .optional(),
    PATH: z.string().default('/usr/local/bin:/usr/bin:/bin'),
    AMEIDE_WORKTREE_TTL_HOURS: z.coerce.number().positive().default(72),
    AMEIDE_MIN_FREE_DISK_MB: z.coerce.number().int().min(0).default(1024),
    AMEIDE_RUN_CPUS: z.coerce.number().positive().max(1024).default(1),
    AMEIDE_RUN_DISK_MB: z.coerce.number().int().min(0).default(10240),
    AMEIDE_CACHE_QUOTA_MB: z.coerce.number().int().positive().default(5120),
    // At most 2 h: the workflow gives its git activities 6 h, enough for a fetch, a checkout and a retry.
    AMEIDE_GIT_TIMEOUT_SECONDS: z.coerce.number().int().min(10).max(7200).default(3600),
    AMEIDE_EGRESS_EXTRA_NETWORKS: z
      .string()
      .optional()
      .refine((s) => commaList(s).every((c) => /^[0-9a-fA-F.:]+\/\d{1,3}$/.test(c)), 'must be CIDR networks, comma-separated (e.g. 10.20.0.0/16)'),
    AMEIDE_EGRESS_RESOLVE: z
      .string()
      .optional()
      .refine(
        (s) => commaList(s).every((c) => /^[A-Za-z0-9.-]+=[0-9a-fA-F.:]+$/.test(c)),
        'must be host=address pairs, comma-separated (e.g. vllm.internal=10.20.0.7)',
      ),
    AMEIDE_GIT_CONFIG: z
      .string()
      .refine((s) => s.startsWith('/'), 'must be an absolute path')
      .default('/dev/null'),
    AMEIDE_PREVIEW_GRACE_SECONDS: z.coerce.number().int().min(0).max(86400).default(300),
    // An address of this worker the router can connect to; listening on every address is not one.
    AMEIDE_PREVIEW_HOST: z
      .string()
      .refine((s) => /^[A-Za-z0-9.:-]+$/.test(s) && !['0.0.0.0', '::', '[::]'].includes(s), 'must be an address of this worker, e.g. 127.0.0.1 or 10.0.0.5')
      .default('127.0.0.1'),
    AMEIDE_OUTPUT_TAIL_LINES: z.coerce.number().int().min(1).max(1000).default(40),
  })
  .extend(policySchema.shape)
  .extend(temporalSchema.shape)
  .extend(s3Schema.shape)
  .superRefine(requireKeyPair);

function artifactS3(e: z.infer<typeof s3Schema>): ArtifactS3Config {
  const endpoint = e.AWS_ENDPOINT_URL_S3 ?? e.AWS_ENDPOINT_URL;
  return {
    endpoint,
    region: e.AWS_REGION,
    forcePathStyle: e.AMEIDE_S3_FORCE_PATH_STYLE ?? endpoint !== undefined,
    credentials:
      e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
        ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY, sessionToken: e.AWS_SESSION_TOKEN }
        : undefined,
  };
}

/** Reads and validates the worker settings; throws ConfigError with one line on a wrong setting. */
export function loadWorkerConfig(env: Env = processEnv()): WorkerConfig {
  const e = parseEnv(schema, env);
  const home = ameideHome(env);
  return {
    apiUrl: e.AMEIDE_API_URL,
    serviceToken: e.AMEIDE_SERVICE_TOKEN,
    temporal: toTemporalConfig(e),
    workspaceDir: e.AMEIDE_WORKSPACE_DIR ? resolve(e.AMEIDE_WORKSPACE_DIR) : defaultWorkspaceDir(home),
    artifactStoreUrl: e.ARTIFACT_STORE_URL ?? `file://${join(home, 'artifacts')}`,
    artifactS3: e.ARTIFACT_STORE_URL?.startsWith('s3:') ? artifactS3(e) : undefined,
    commandPath: e.PATH,
    worktreeTtlHours: e.AMEIDE_WORKTREE_TTL_HOURS,
    minFreeDiskMb: e.AMEIDE_MIN_FREE_DISK_MB,
    policy: toSandboxPolicy(e),
    runCpus: e.AMEIDE_RUN_CPUS,
    runDiskMb: e.AMEIDE_RUN_DISK_MB,
    cacheQuotaMb: e.AMEIDE_CACHE_QUOTA_MB,
    gitConfig: e.AMEIDE_GIT_CONFIG,
    gitTimeoutSeconds: e.AMEIDE_GIT_TIMEOUT_SECONDS,
    egressExtraNetworks: commaList(e.AMEIDE_EGRESS_EXTRA_NETWORKS),
    egressResolve: Object.fromEntries(commaList(e.AMEIDE_EGRESS_RESOLVE).map((pair) => [pair.split('=')[0]!.toLowerCase(), pair.split('=')[1]!])),
    previewGraceSeconds: e.AMEIDE_PREVIEW_GRACE_SECONDS,
    previewHost: e.AMEIDE_PREVIEW_HOST,
    outputTailLines: e.AMEIDE_OUTPUT_TAIL_LINES,
    agentSpansUrl: loadTelemetryConfig('ameide-worker', env).otlpTracesUrl,
    secrets: Object.fromEntries(
      Object.entries(env)
        .filter(([k, v]) => k.startsWith(SECRET_PREFIX) && v)
        .map(([k, v]) => [k.slice(SECRET_PREFIX.length), v!]),
    ),
    home,
  };
}

/** S3 client settings from the standard AWS variables (the CLI downloads s3:// artifacts with them). */
export function loadS3Settings(env: Env = processEnv()): ArtifactS3Config {
  return artifactS3(parseEnv(s3Schema.superRefine(requireKeyPair), env));
}
