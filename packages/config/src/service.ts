import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ameideHome, parseEnv, port, processEnv, url, type Env } from './env.js';
import { policySchema, toSandboxPolicy, type SandboxPolicy } from './policy.js';
import { temporalSchema, toTemporalConfig, type TemporalConfig } from './temporal.js';

/** A static API key: the token, the tenant it names, and whether it is a service credential. */
export interface ApiKey {
  token: string;
  tenantId: string;
  service: boolean;
}

/** Settings of the workflow service (`services/workflows`). */
export interface ServiceConfig {
  databaseUrl: string;
  host: string;
  port: number;
  temporal: TemporalConfig;
  auth: {
    jwtSecret?: string;
    jwtPublicKey?: string;
    jwtIssuer?: string;
    jwtAudience?: string;
    apiKeys: ApiKey[];
  };
  /** The operator's policy: definitions asking for more are refused. */
  policy: SandboxPolicy;
  /** HMAC-SHA256 secrets of the work item webhook, per tenant (AMEIDE_WEBHOOK_SECRETS). */
  webhookSecrets: Record<string, string>;
  /** Runs QUEUED this long without a workflow get it started (checked as often). */
  reconcileSeconds: number;
  /**
   * The preview router (services/workflows/src/previews): `port` 0 means none. Local previews' URLs
   * are `http://<label>.<tenant>.<domain>:<urlPort>/`; `urlPort` is the router's port unless the
   * operator advertises another one (a port forwarded to it).
   */
  preview: { port: number; domain: string; urlPort: number };
  /** Timeouts of API connections, in milliseconds (see `startApiServer`). */
  timeouts: {
    /** A connection's first bytes, and each HTTP/1.1 request's headers, must arrive within this. */
    headersMs: number;
    /** Each request, headers and body, must arrive within this (the response may take longer). */
    requestMs: number;
    /** A connection with no request in progress is closed after this long. */
    idleMs: number;
  };
  /**
   * The service's own git cache (AMEIDE_SERVICE_GIT_DIR): a bare repository per tenant and repository,
   * fetched from the pushed work branches, that GetRunDiff reads a run's change from.
   */
  gitDir: string;
  home: string;
  /**
   * The key that signs attestations: AMEIDE_SIGNING_KEY (an ed25519 private key, PEM) or
   * AMEIDE_SIGNING_KEY_FILE; with neither, a development key kept in `<home>/signing/` (created on
   * first use) and every attestation it signs is marked development.
   */
  signing: { keyPem?: string; keyFile?: string; devKeyDir: string };
  /** Notifications: e-mail over SMTP (none without AMEIDE_SMTP_URL) and webhook deliveries. */
  notifications: {
    smtpUrl?: string;
    mailFrom: string;
    /** Attempts of a webhook or e-mail delivery before it is dead-lettered. */
    maxAttempts: number;
    /** Backoff of delivery retries: the first wait, doubled each attempt up to the cap. */
    retryInitialMs: number;
    retryMaxMs: number;
    /** Links in messages point here (the platform UI or the API). */
    publicUrl: string;
  };
}

/** Where the service keeps its git cache when AMEIDE_SERVICE_GIT_DIR is unset: a directory of this user's under the OS temp dir. */
function defaultServiceGitDir(): string {
  let user = 'user';
  try {
    const u = userInfo();
    user = u.uid >= 0 ? String(u.uid) : u.username;
  } catch {
    // No entry for this uid (a container's arbitrary uid): one directory for all such users.
  }
  return join(tmpdir(), `ameide-service-git-${user}`);
}

const apiKeys = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const keys: ApiKey[] = [];
    for (const entry of s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      const [token, tenantId, role] = entry.split(':');
      if (!token || !tenantId || (role && role !== 'service')) {
        ctx.addIssue({ code: 'custom', message: 'each entry must be token:tenant or token:tenant:service' });
        return z.NEVER;
      }
      if (tenantId === '*' && role !== 'service') {
        ctx.addIssue({ code: 'custom', message: 'the tenant "*" (all tenants) is only for worker credentials: token:*:service' });
        return z.NEVER;
      }
      keys.push({ token, tenantId, service: role === 'service' });
    }
    return keys;
  });

const schema = z
  .object({
    DATABASE_URL: url(['postgres:', 'postgresql:']),
    AMEIDE_API_HOST: z.string().default('127.0.0.1'),
    AMEIDE_API_PORT: port.default(8080),
    AMEIDE_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    AMEIDE_JWT_PUBLIC_KEY: z.string().includes('BEGIN PUBLIC KEY', { message: 'must be a PEM public key' }).optional(),
    AMEIDE_JWT_ISSUER: z.string().optional(),
    AMEIDE_JWT_AUDIENCE: z.string().optional(),
    AMEIDE_API_KEYS: apiKeys,
    // tenant:secret,… — the HMAC secrets of the work item webhook, per tenant.
    AMEIDE_WEBHOOK_SECRETS: z
      .string()
      .default('')
      .transform((s, ctx) => {
        const out: Record<string, string> = {};
        for (const entry of s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)) {
          const i = entry.indexOf(':');
          const tenant = entry.slice(0, i);
          const secret = entry.slice(i + 1);
          if (i < 1 || secret.length < 16 || tenant === '*') {
            ctx.addIssue({ code: 'custom', message: 'each entry must be tenant:secret, the secret 16 characters or more' });
            return z.NEVER;
          }
          out[tenant] = secret;
        }
        return out;
      }),
    AMEIDE_PREVIEW_PORT: port.default(0),
    AMEIDE_PREVIEW_DOMAIN: z
      .string()
      .default('preview.localhost')
      .transform((d) => d.toLowerCase().replace(/\.$/, ''))
      .refine(
        (d) => d.length <= 190 && /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(d),
        'must be a DNS name, e.g. preview.localhost',
      ),
    AMEIDE_PREVIEW_PUBLIC_URL_PORT: port.min(1).optional(),
    AMEIDE_RECONCILE_SECONDS: z.coerce.number().positive().max(3600).default(30),
    AMEIDE_API_HEADERS_TIMEOUT_SECONDS: z.coerce.number().positive().max(3600).default(20),
    AMEIDE_API_REQUEST_TIMEOUT_SECONDS: z.coerce.number().positive().max(3600).default(60),
    AMEIDE_API_IDLE_TIMEOUT_SECONDS: z.coerce.number().positive().max(86400).default(120),
    AMEIDE_SERVICE_GIT_DIR: z.string().optional(),
    AMEIDE_SIGNING_KEY: z.string().includes('PRIVATE KEY', { message: 'must be a PEM private key (ed25519)' }).optional(),
    AMEIDE_SIGNING_KEY_FILE: z.string().optional(),
    AMEIDE_SMTP_URL: url(['smtp:', 'smtps:']).optional(),
    AMEIDE_MAIL_FROM: z.string().email().default('ameide@localhost'),
    AMEIDE_NOTIFY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
    AMEIDE_NOTIFY_RETRY_INITIAL_SECONDS: z.coerce.number().positive().max(3600).default(2),
    AMEIDE_NOTIFY_RETRY_MAX_SECONDS: z.coerce.number().positive().max(86400).default(300),
    AMEIDE_PUBLIC_URL: url(['http:', 'https:']).optional(),
  })
  .extend(temporalSchema.shape)
  .extend(policySchema.shape)
  .refine((e) => !(e.AMEIDE_JWT_SECRET && e.AMEIDE_JWT_PUBLIC_KEY), {
    path: ['AMEIDE_JWT_SECRET'],
    message: 'set either AMEIDE_JWT_SECRET or AMEIDE_JWT_PUBLIC_KEY, not both',
  })
  .refine((e) => e.AMEIDE_API_REQUEST_TIMEOUT_SECONDS >= e.AMEIDE_API_HEADERS_TIMEOUT_SECONDS, {
    path: ['AMEIDE_API_REQUEST_TIMEOUT_SECONDS'],
    message: 'must not be less than AMEIDE_API_HEADERS_TIMEOUT_SECONDS (a request includes its headers)',
  })
  .refine((e) => !(e.AMEIDE_SIGNING_KEY && e.AMEIDE_SIGNING_KEY_FILE), {
    path: ['AMEIDE_SIGNING_KEY'],
    message: 'set either AMEIDE_SIGNING_KEY or AMEIDE_SIGNING_KEY_FILE, not both',
  })
  .refine((e) => e.AMEIDE_JWT_SECRET || e.AMEIDE_JWT_PUBLIC_KEY || e.AMEIDE_API_KEYS.length > 0, {
    path: ['AMEIDE_API_KEYS'],
    message: 'no credentials configured: set AMEIDE_JWT_SECRET, AMEIDE_JWT_PUBLIC_KEY or AMEIDE_API_KEYS',
  });

/** Reads and validates the service settings; throws ConfigError with one line on a wrong setting. */
export function loadServiceConfig(env: Env = processEnv()): ServiceConfig {
  const e = parseEnv(schema, env);
  return {
    databaseUrl: e.DATABASE_URL,
    host: e.AMEIDE_API_HOST,
    port: e.AMEIDE_API_PORT,
    temporal: toTemporalConfig(e),
    auth: {
      jwtSecret: e.AMEIDE_JWT_SECRET,
      jwtPublicKey: e.AMEIDE_JWT_PUBLIC_KEY,
      jwtIssuer: e.AMEIDE_JWT_ISSUER,
      jwtAudience: e.AMEIDE_JWT_AUDIENCE,
      apiKeys: e.AMEIDE_API_KEYS,
    },
    policy: toSandboxPolicy(e),
    webhookSecrets: e.AMEIDE_WEBHOOK_SECRETS,
    reconcileSeconds: e.AMEIDE_RECONCILE_SECONDS,
    preview: { port: e.AMEIDE_PREVIEW_PORT, domain: e.AMEIDE_PREVIEW_DOMAIN, urlPort: e.AMEIDE_PREVIEW_PUBLIC_URL_PORT ?? e.AMEIDE_PREVIEW_PORT },
    timeouts: {
      headersMs: e.AMEIDE_API_HEADERS_TIMEOUT_SECONDS * 1000,
      requestMs: e.AMEIDE_API_REQUEST_TIMEOUT_SECONDS * 1000,
      idleMs: e.AMEIDE_API_IDLE_TIMEOUT_SECONDS * 1000,
    },
    gitDir: e.AMEIDE_SERVICE_GIT_DIR ? resolve(e.AMEIDE_SERVICE_GIT_DIR) : defaultServiceGitDir(),
    home: ameideHome(env),
    signing: {
      keyPem: e.AMEIDE_SIGNING_KEY,
      keyFile: e.AMEIDE_SIGNING_KEY_FILE ? resolve(e.AMEIDE_SIGNING_KEY_FILE) : undefined,
      devKeyDir: join(ameideHome(env), 'signing'),
    },
    notifications: {
      smtpUrl: e.AMEIDE_SMTP_URL,
      mailFrom: e.AMEIDE_MAIL_FROM,
      maxAttempts: e.AMEIDE_NOTIFY_MAX_ATTEMPTS,
      retryInitialMs: e.AMEIDE_NOTIFY_RETRY_INITIAL_SECONDS * 1000,
      retryMaxMs: e.AMEIDE_NOTIFY_RETRY_MAX_SECONDS * 1000,
      publicUrl: (e.AMEIDE_PUBLIC_URL ?? `http://${e.AMEIDE_API_HOST}:${e.AMEIDE_API_PORT}`).replace(/\/$/, ''),
    },
  };
}
