import { normalize } from 'node:path';
import { ScalarType, toJsonString, type DescField, type DescMessage, type Message } from '@bufbuild/protobuf';
import { reflect, type ReflectList, type ReflectMap, type ReflectMessage } from '@bufbuild/protobuf/reflect';
import { egressPatternAllowed, isHostPattern, underPrefix, type SandboxPolicy } from '@ameide/config';
import { Phase, type DefinitionSpec, type MethodologyContext, type WorkItem } from '@ameide/contracts';
import { AGENT_APIS, AGENT_KINDS, DEFAULT_AGENT_MAX_TURNS, isAgentKind, modelEndpointOf } from '@ameide/temporal';
import { InvalidFieldError, NotFoundError } from './errors.js';
import { DEFAULT_LIMIT, DEFAULT_PAGE_SIZE, LIMITS, MAX_PAGE_SIZE, MAX_PHASE_TIMEOUT_SECONDS, type FieldLimit } from './limits.js';
import { isIdPrefix, isUuid } from '@ameide/db';
export { isUuid } from '@ameide/db';

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const BRANCH_RE = /^(?!.*\.\.)(?!\/)[A-Za-z0-9._/-]{1,200}(?<!\/)$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function requireName(field: string, name: string): string {
  if (!NAME_RE.test(name)) throw new InvalidFieldError(field, 'must be 1-63 lowercase letters, digits, ".", "_" or "-"');
  return name;
}

export function requireId(field: string, id: string): string {
  if (!id) throw new InvalidFieldError(field, 'must not be empty');
  return id;
}

/** The fewest hex digits a short id must give. */
export const MIN_ID_PREFIX = 6;
/** Candidates an ambiguous short id lists. */
const MAX_CANDIDATES = 10;

/** What resolves short ids: a repository of runs, plans or definitions. */
export interface IdsByPrefix {
  idsWithPrefix(tenantId: string, prefix: string, limit: number): Promise<string[]>;
}

/**
 * The one place an id field of the API is resolved: a full id (a UUID) is the id; any other value
 * that begins like one with at least MIN_ID_PREFIX hex digits (a short id, as `ameide runs list`
 * prints them) is the one id of the tenant's runs, plans or definitions (`kind`, for messages) that
 * begins with it. Undefined when it names nothing (the caller answers NOT_FOUND, as for an unknown
 * id); an InvalidFieldError naming `field` when it is too short or begins more than one id, then
 * listing (some of) them.
 */
export async function resolveId(
  ids: IdsByPrefix,
  kind: string,
  tenantId: string,
  field: string,
  id: string,
  /** A value that may also be a name (definitions): too short a prefix is then only an unknown name. */
  orName = false,
): Promise<string | undefined> {
  requireId(field, id);
  if (isUuid(id)) return id;
  const prefix = id.toLowerCase();
  if (!isIdPrefix(prefix)) return undefined;
  if (prefix.replace(/-/g, '').length < MIN_ID_PREFIX) {
    if (orName) return undefined;
    throw new InvalidFieldError(field, `"${id}" is too short: give the ${kind} id, or at least its first ${MIN_ID_PREFIX} characters`);
  }
  const found = await ids.idsWithPrefix(tenantId, prefix, MAX_CANDIDATES + 1);
  if (found.length <= 1) return found[0];
  const shown = found.slice(0, MAX_CANDIDATES);
  // As many characters as tell the candidates apart (at least 8).
  let n = 8;
  while (n < 36 && new Set(shown.map((c) => c.slice(0, n))).size < shown.length) n++;
  const many = found.length > MAX_CANDIDATES ? `more than ${MAX_CANDIDATES}` : String(found.length);
  const list = shown.map((c) => `${c.slice(0, n)}…`).join(', ') + (found.length > MAX_CANDIDATES ? ', …' : '');
  throw new InvalidFieldError(field, `"${id}" matches ${many} ${kind}s: ${list}; give more characters`);
}

/**
 * An optional id filter of a list (`run_id` of previews, impediments, deliveries): empty is no filter,
 * otherwise the id {@link resolveId} finds, a short id included. NOT_FOUND when it names nothing.
 */
export async function filterId(ids: IdsByPrefix, kind: string, tenantId: string, field: string, value: string): Promise<string | undefined> {
  if (!value) return undefined;
  const id = await resolveId(ids, kind, tenantId, field, value);
  if (id) return id;
  if (!isIdPrefix(value.toLowerCase())) throw new InvalidFieldError(field, `must be a ${kind} id or its first ${MIN_ID_PREFIX} or more characters`);
  throw new NotFoundError(kind, value);
}

/** Validates a definition spec and fills defaults; throws InvalidFieldError naming the field. */
export function normaliseDefinitionSpec(spec: DefinitionSpec | undefined, policy: SandboxPolicy, field = 'spec'): DefinitionSpec {
  if (!spec) throw new InvalidFieldError(field, 'is required');
  if (!spec.repoUrl.trim()) throw new InvalidFieldError(`${field}.repo_url`, 'must not be empty');
  if (spec.repoUrl.trim().startsWith('-')) throw new InvalidFieldError(`${field}.repo_url`, 'must not start with "-"');
  validateAgent(spec);
  spec.defaultBranch ||= 'main';
  if (!BRANCH_RE.test(spec.defaultBranch)) throw new InvalidFieldError('spec.default_branch', 'is not a valid branch name');
  spec.branchPrefix ||= 'ameide/';
  if (!BRANCH_RE.test(spec.branchPrefix.replace(/[/-]$/, '') || 'x')) throw new InvalidFieldError('spec.branch_prefix', 'is not a valid branch prefix');
  spec.phaseTimeoutSeconds ||= 900;
  if (spec.phaseTimeoutSeconds > MAX_PHASE_TIMEOUT_SECONDS)
    throw new InvalidFieldError('spec.phase_timeout_seconds', `must be at most ${MAX_PHASE_TIMEOUT_SECONDS}`);
  for (const k of Object.keys(spec.env)) if (!ENV_RE.test(k)) throw new InvalidFieldError(`spec.env.${k}`, 'is not a valid environment variable name');
  validateGuardrails(spec);
  validateDelivery(spec);
  checkSandboxPolicy(spec, policy, field);
  return spec;
}

/**
 * The agent phase: `agent_command`, or a coding agent (`agent`) with its model, endpoint and key;
 * and the network mode `model`, which needs an endpoint. Fills `agent.max_turns`.
 */
function validateAgent(spec: DefinitionSpec): void {
  const a = spec.agent;
  const kind = a?.kind ?? '';
  const network = spec.guardrails?.network;
  if (kind !== '' && kind !== 'command' && !isAgentKind(kind))
    throw new InvalidFieldError('spec.agent.kind', `must be one of command, ${AGENT_KINDS.join(', ')}`);
  if (!isAgentKind(kind) && !spec.agentCommand.trim())
    throw new InvalidFieldError('spec.agent_command', 'must not be empty (or set agent.kind to codex, claude-code or langchain)');
  if (network?.agentMode && network.agentMode !== 'model')
    throw new InvalidFieldError('spec.guardrails.network.agent_mode', 'must be "model" or empty (network.agent: true or false)');
  if (a?.endpoint || isAgentKind(kind) || network?.agentMode) {
    const endpoint = a?.endpoint ?? '';
    const parsed = modelEndpointOf(endpoint);
    if (!endpoint) throw new InvalidFieldError('spec.agent.endpoint', 'must be the base URL of the model API, e.g. https://api.openai.com/v1');
    if (!parsed || /@/.test(endpoint.split(/[/?#]/)[2] ?? '') || /\s/.test(endpoint))
      throw new InvalidFieldError('spec.agent.endpoint', 'must be an http(s) URL naming a host, e.g. https://api.openai.com/v1 (no user or password in it)');
    if (!isHostPattern(parsed.host) || /^[\d.]+$/.test(parsed.host))
      throw new InvalidFieldError('spec.agent.endpoint', 'must name a host, not an IP address: the egress proxy reaches named hosts only');
  }
  if (!a) return;
  if (isAgentKind(kind)) {
    if (!a.model.trim()) throw new InvalidFieldError('spec.agent.model', `must name the model the ${kind} agent uses`);
    if (a.api && !AGENT_APIS[kind].includes(a.api as never))
      throw new InvalidFieldError('spec.agent.api', `must be ${AGENT_APIS[kind].join(' or ')} for ${kind} (or empty: ${AGENT_APIS[kind][0]})`);
    if (network?.agent === false)
      throw new InvalidFieldError(
        'spec.guardrails.network.agent',
        `leaves the ${kind} agent no way to its model: leave it unset (network mode "model") or true`,
      );
    a.maxTurns ||= DEFAULT_AGENT_MAX_TURNS;
  } else if (a.api || a.model || a.apiKeySecret || a.maxTurns || a.instructions) {
    throw new InvalidFieldError('spec.agent.kind', 'must be codex, claude-code or langchain for model, api, api_key_secret, max_turns and instructions');
  }
  if (a.apiKeySecret && !spec.secrets.some((r) => r.name === a.apiKeySecret && r.phases.includes(Phase.AGENT)))
    throw new InvalidFieldError('spec.agent.api_key_secret', `must name a secret in spec.secrets given to the agent phase (none is named ${a.apiKeySecret})`);
}

const PREVIEW_PROVIDERS = new Set(['', 'local', 'command']);
const PR_PROVIDERS = new Set(['', 'git', 'github', 'gitlab', 'none']);

/** The preview and pull request settings: providers, what each needs, well-formed paths and URLs. */
function validateDelivery(spec: DefinitionSpec): void {
  spec.testReports.forEach((g, i) => {
    if (!g.trim() || g.startsWith('/') || g.split('/').includes('..') || /[\n\0]/.test(g))
      throw new InvalidFieldError(`spec.test_reports[${i}]`, 'must be a repo-relative glob such as reports/*.xml');
  });
  const p = spec.preview;
  if (p) {
    if (!PREVIEW_PROVIDERS.has(p.provider)) throw new InvalidFieldError('spec.preview.provider', 'must be "local" or "command"');
    if (!p.command.trim() && (p.provider || p.aliasCommand || p.healthPath))
      throw new InvalidFieldError('spec.preview.command', 'must not be empty: local previews serve with it, command previews deploy with it');
    if (p.aliasCommand.trim() && p.provider !== 'command') throw new InvalidFieldError('spec.preview.alias_command', 'is only for provider "command"');
    if (p.healthPath && (!p.healthPath.startsWith('/') || /\s/.test(p.healthPath)))
      throw new InvalidFieldError('spec.preview.health_path', 'must be a URL path starting with "/", e.g. /health');
  }
  const pr = spec.pullRequest;
  if (!pr) return;
  if (!PR_PROVIDERS.has(pr.provider)) throw new InvalidFieldError('spec.pull_request.provider', 'must be one of git, github, gitlab, none');
  const forge = pr.provider === 'github' || pr.provider === 'gitlab';
  if (forge && !pr.tokenFromEnv) throw new InvalidFieldError('spec.pull_request.token_from_env', `is required for the ${pr.provider} provider`);
  if (pr.tokenFromEnv && !/^[A-Z0-9_]+$/.test(pr.tokenFromEnv))
    throw new InvalidFieldError('spec.pull_request.token_from_env', 'must be upper-case letters, digits and _');
  if (pr.apiUrl && !/^https?:\/\/[^\s/]+/.test(pr.apiUrl)) throw new InvalidFieldError('spec.pull_request.api_url', 'must be an http(s) URL');
  if (pr.baseBranch && !BRANCH_RE.test(pr.baseBranch)) throw new InvalidFieldError('spec.pull_request.base_branch', 'is not a valid branch name');
  if (pr.repository && !/^[\w.-]+(\/[\w.-]+)+$/.test(pr.repository))
    throw new InvalidFieldError('spec.pull_request.repository', 'must be owner/name (GitHub) or group/project (GitLab)');
  pr.labels.forEach((l, i) => {
    if (!l.trim() || l.includes(',')) throw new InvalidFieldError(`spec.pull_request.labels[${i}]`, 'must be a non-empty label without commas');
  });
  pr.reviewers.forEach((r, i) => {
    if (!/^[\w.-]+$/.test(r)) throw new InvalidFieldError(`spec.pull_request.reviewers[${i}]`, 'must be a login or username');
  });
}

/**
 * Refuses what the operator's policy does not allow: running without a sandbox, read-only host
 * paths outside the allowed prefixes, egress hosts outside the operator's allowlist. Each error names
 * the field and the setting that would allow it. Also used on stored plans before a run starts.
 */
export function checkSandboxPolicy(spec: DefinitionSpec, policy: SandboxPolicy, field = 'spec'): void {
  const endpoint = modelEndpointOf(spec.agent?.endpoint);
  if (endpoint && !egressPatternAllowed(endpoint.host, policy.egressAllowedHosts)) {
    throw new InvalidFieldError(
      `${field}.agent.endpoint`,
      `names ${endpoint.host}, which is outside the operator's egress allowlist (AMEIDE_EGRESS_ALLOWED_HOSTS: ${policy.egressAllowedHosts.join(', ')})`,
    );
  }
  const g = spec.guardrails;
  if (!g) return;
  if (g.sandbox === 'none' && !policy.allowNone) {
    throw new InvalidFieldError(
      `${field}.guardrails.sandbox`,
      '"none" is not allowed by the operator\'s policy (AMEIDE_SANDBOX_ALLOW_NONE is not true): remove it to run in the sandbox',
    );
  }
  g.readOnlyPaths.forEach((p, i) => {
    if (!underPrefix(normalize(p), policy.readOnlyPathPrefixes)) {
      const allowed = policy.readOnlyPathPrefixes.length ? `only paths under ${policy.readOnlyPathPrefixes.join(', ')} are` : 'no host path is';
      throw new InvalidFieldError(
        `${field}.guardrails.read_only_paths[${i}]`,
        `is outside the operator's policy: ${allowed} allowed (AMEIDE_SANDBOX_READ_ONLY_PATHS)`,
      );
    }
  });
  g.egressHosts.forEach((h, i) => {
    if (!isHostPattern(h.toLowerCase())) throw new InvalidFieldError(`${field}.guardrails.egress_hosts[${i}]`, 'must be a host name or *.domain');
    if (!egressPatternAllowed(h, policy.egressAllowedHosts)) {
      throw new InvalidFieldError(
        `${field}.guardrails.egress_hosts[${i}]`,
        `is outside the operator's egress allowlist (AMEIDE_EGRESS_ALLOWED_HOSTS: ${policy.egressAllowedHosts.join(', ')})`,
      );
    }
  });
}

const SANDBOXES = new Set(['', 'bubblewrap', 'none']);
const CACHES = new Set(['npm', 'pnpm', 'pip', 'go']);
const SECRET_PHASES = new Set([Phase.INSTALL, Phase.AGENT, Phase.TEST, Phase.PREVIEW]);
const RESERVED_ENV = /^(PATH|HOME|TMPDIR|LANG|CI|AMEIDE_.*)$/;

function validateGuardrails(spec: DefinitionSpec): void {
  const g = spec.guardrails;
  if (g) {
    if (!SANDBOXES.has(g.sandbox)) throw new InvalidFieldError('spec.guardrails.sandbox', 'must be "bubblewrap" or "none"');
    for (const [field, globs] of [
      ['allowed_paths', g.allowedPaths],
      ['denied_paths', g.deniedPaths],
    ] as const) {
      globs.forEach((glob, i) => {
        if (!glob.trim() || glob.startsWith('/')) throw new InvalidFieldError(`spec.guardrails.${field}[${i}]`, 'must be a repo-relative glob such as src/**');
      });
    }
    g.packageCaches.forEach((c, i) => {
      if (!CACHES.has(c)) throw new InvalidFieldError(`spec.guardrails.package_caches[${i}]`, 'must be one of npm, pnpm, pip, go');
    });
    g.readOnlyPaths.forEach((p, i) => {
      if (!p.startsWith('/') || p.split('/').includes('..'))
        throw new InvalidFieldError(`spec.guardrails.read_only_paths[${i}]`, 'must be an absolute path without ".."');
    });
  }
  spec.secrets.forEach((ref, i) => {
    if (!ENV_RE.test(ref.name) || RESERVED_ENV.test(ref.name))
      throw new InvalidFieldError(`spec.secrets[${i}].name`, 'must be an environment variable name other than PATH, HOME, TMPDIR, LANG, CI or AMEIDE_*');
    if (!/^[A-Z0-9_]+$/.test(ref.fromEnv)) throw new InvalidFieldError(`spec.secrets[${i}].from_env`, 'must be upper-case letters, digits and _');
    if (!ref.phases.length || ref.phases.some((p) => !SECRET_PHASES.has(p)))
      throw new InvalidFieldError(`spec.secrets[${i}].phases`, 'must name one or more of install, agent, test, preview');
  });
}

export function validateWorkItems(items: WorkItem[]): void {
  items.forEach((w, i) => requireWorkItemId(`work_items[${i}].id`, w.id));
}

/** A backlog's work item id: 1-128 letters, digits or `._:/-`. */
export function requireWorkItemId(field: string, id: string): string {
  if (!ID_RE.test(id)) throw new InvalidFieldError(field, 'must be 1-128 letters, digits or ._:/-');
  return id;
}

export function validateMethodology(m: MethodologyContext | undefined, field = 'methodology'): void {
  if (!m) return;
  for (const key of ['timeboxIds', 'goalIds', 'workItemIds', 'elementIds'] as const) {
    m[key].forEach((id, i) => {
      if (!ID_RE.test(id))
        throw new InvalidFieldError(`${field}.${key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())}[${i}]`, 'must be 1-128 letters, digits or ._:/-');
    });
  }
}

export function pageSize(n: number): number {
  if (n > MAX_PAGE_SIZE) throw new InvalidFieldError('page_size', `must be at most ${MAX_PAGE_SIZE}`);
  return n || DEFAULT_PAGE_SIZE;
}

// ---------------------------------------------------------------------------------------------------
// Every request: sizes, ranges and what text the database can store (limits.ts)
// ---------------------------------------------------------------------------------------------------

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const INT64 = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

/** `annotations.team`, or `annotations["a key"]` when the key is not a plain word (JSON-quoted, cut at 64 characters). */
function mapEntryPath(path: string, key: string): string {
  if (/^[A-Za-z0-9_.:/-]{1,64}$/.test(key)) return `${path}.${key}`;
  return `${path}[${JSON.stringify(key.length > 64 ? key.slice(0, 64) + '…' : key)}]`;
}

function limitOf(field: DescField): FieldLimit | undefined {
  return LIMITS[`${field.parent.typeName}.${field.name}`];
}

function checkString(path: string, s: string, limit: FieldLimit | undefined): void {
  if (!limit?.nulAllowed && s.includes('\0')) throw new InvalidFieldError(path, 'must not contain NUL bytes');
  const max = limit?.bytes ?? DEFAULT_LIMIT.bytes;
  // Cheap first: a string of n UTF-16 units has at most 3n UTF-8 bytes.
  if (s.length * 3 > max && utf8Bytes(s) > max) throw new InvalidFieldError(path, `must be at most ${max} bytes (UTF-8), got ${utf8Bytes(s)}`);
}

function checkNumber(path: string, n: number | bigint, type: ScalarType, limit: FieldLimit | undefined): void {
  const wide = INT64.has(type);
  const max = limit?.max ?? (wide ? Number.MAX_SAFE_INTEGER : undefined);
  const min = limit?.min ?? (wide ? -Number.MAX_SAFE_INTEGER : undefined);
  // 64-bit values are bigints, compared as such: 2^64 - 1 is above 2^53 - 1, which a number could not tell.
  if (max !== undefined && (typeof n === 'bigint' ? n > BigInt(max) : n > max)) throw new InvalidFieldError(path, `must be at most ${max}`);
  if (min !== undefined && (typeof n === 'bigint' ? n < BigInt(min) : n < min)) throw new InvalidFieldError(path, `must be at least ${min}`);
}

function checkEnum(path: string, n: number, field: DescField & { enum: NonNullable<DescField['enum']> }): void {
  if (!field.enum.values.some((v) => v.number === n)) throw new InvalidFieldError(path, `${n} is not a ${field.enum.name} value`);
}

function checkEntries(path: string, size: number, limit: FieldLimit | undefined): void {
  const max = limit?.entries ?? DEFAULT_LIMIT.entries;
  if (size > max) throw new InvalidFieldError(path, `must have at most ${max} entries, got ${size}`);
}

function checkJsonBytes(path: string, json: string, max: number): void {
  const n = utf8Bytes(json);
  if (n > max) throw new InvalidFieldError(path, `must be at most ${max} bytes as JSON, got ${n}`);
}

function checkValue(path: string, field: DescField, kind: 'scalar' | 'enum' | 'message', value: unknown, limit: FieldLimit | undefined): void {
  if (kind === 'message') checkMessage(path, value as ReflectMessage);
  else if (kind === 'enum') checkEnum(path, value as number, field as DescField & { enum: NonNullable<DescField['enum']> });
  else if (typeof value === 'string') checkString(path, value, limit);
  else if (typeof value === 'number' || typeof value === 'bigint') checkNumber(path, value, (field as { scalar: ScalarType }).scalar, limit);
}

function checkMessage(path: string, m: ReflectMessage): void {
  const at = (name: string) => (path ? `${path}.${name}` : name);
  for (const field of m.fields) {
    if (!m.isSet(field)) continue;
    const limit = limitOf(field);
    const p = at(field.name);
    switch (field.fieldKind) {
      case 'scalar':
      case 'enum':
      case 'message':
        checkValue(p, field, field.fieldKind, m.get(field), limit);
        break;
      case 'list': {
        const list = m.get(field) as ReflectList;
        checkEntries(p, list.size, limit);
        let i = 0;
        for (const v of list) checkValue(`${p}[${i++}]`, field, field.listKind, v, limit);
        if (limit?.jsonBytes !== undefined && field.listKind === 'message') {
          checkJsonBytes(p, `[${[...list].map((v) => toJsonString(field.message, (v as ReflectMessage).message)).join(',')}]`, limit.jsonBytes);
        }
        break;
      }
      case 'map': {
        const map = m.get(field) as ReflectMap;
        checkEntries(p, map.size, limit);
        const keyBytes = limit?.keyBytes ?? DEFAULT_LIMIT.keyBytes;
        for (const [k, v] of map) {
          const key = String(k);
          if (!limit?.nulAllowed && key.includes('\0'))
            throw new InvalidFieldError(p, `keys must not contain NUL bytes (key ${JSON.stringify(key.slice(0, 64))})`);
          if (utf8Bytes(key) > keyBytes) throw new InvalidFieldError(p, `keys must be at most ${keyBytes} bytes (UTF-8), got one of ${utf8Bytes(key)}`);
          checkValue(mapEntryPath(p, key), field, field.mapKind, v, limit);
        }
        break;
      }
    }
  }
  const own = LIMITS[m.desc.typeName];
  if (own?.jsonBytes !== undefined) checkJsonBytes(path || 'request', toJsonString(m.desc, m.message), own.jsonBytes);
}

/**
 * Holds a request message to the limits of limits.ts, before any handler sees it: string sizes, no
 * NUL bytes (Postgres text and JSONB cannot store them), list and map sizes, number ranges (64-bit
 * numbers within ±(2^53 - 1)), known enum values, sizes of whole parts as JSON. (Strings are valid
 * Unicode already: the protobuf and JSON parsers refuse invalid UTF-8 and lone surrogates.)
 * Throws InvalidFieldError naming the field by its proto path, e.g. `spec.agent_command`,
 * `work_items[2].title`, `annotations.team`.
 */
export function checkRequest<T extends Message>(schema: DescMessage, message: T): T {
  checkMessage('', reflect(schema, message));
  return message;
}
