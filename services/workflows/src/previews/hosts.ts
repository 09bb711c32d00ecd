import { createHash } from 'node:crypto';

/** A run's own host label: `run-` and the first 8 characters of its id. */
export const RUN_LABEL = /^run-([0-9a-f]{8})$/;

/** The longest DNS label. */
const MAX_LABEL = 63;

/**
 * The DNS label a tenant or work item id is known by in preview host names (RFC 1123: 1-63 of
 * `a-z0-9-`, no `-` at either end, and never `--`, which would make `xn--…` an internationalised label).
 *
 * The rule: lower-case the id and turn every run of other characters (`-` included) into one `-`,
 * trimming `-` at the ends. When that only lower-cased the id (nothing replaced or trimmed), is 1-63
 * characters and does not have the `run-xxxxxxxx` form of run labels, it is the slug: `CALC-1` →
 * `calc-1`, `acme` → `acme`. Otherwise the slug is that text cut to 56 characters, `-` and the first 6 hex digits of
 * the SHA-256 of the id itself (or `x` and those digits when nothing is left): `web/Login page` →
 * `web-login-page-1f3a9c`, `run-deadbeef` → `run-deadbeef-4b2e01`, `__` → `x9d2a1e`.
 *
 * Ids that differ only in case (or, deliberately, an id made to equal another's hashed slug) share a
 * slug; such work items share an alias, which points at the newest live preview among them.
 */
export function dnsSlug(id: string): string {
  const lower = id.toLowerCase();
  const base = lower.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  const usable = base === lower && base.length >= 1 && base.length <= MAX_LABEL && !RUN_LABEL.test(base);
  if (usable) return base;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 6);
  const head = base.slice(0, MAX_LABEL - 7).replace(/-+$/, '');
  return head ? `${head}-${hash}` : `x${hash}`;
}

/** What the label of a preview host names. */
export type HostLabel = { kind: 'run'; id8: string } | { kind: 'alias'; slug: string };

/** A preview host, parsed: `<label>.<tenant slug>.<domain>`. */
export interface PreviewHost {
  label: HostLabel;
  tenantSlug: string;
}

/**
 * The preview URLs of one service: `http://run-<id8>.<tenant>.<domain>:<port>/` for a run (never
 * changes) and `http://<work item>.<tenant>.<domain>:<port>/` for the alias of a work item (follows
 * its newest live preview); the labels are `dnsSlug`s. The port is left out when it is 80.
 */
export class PreviewHosts {
  private readonly suffix: string;

  constructor(
    readonly domain: string,
    /** The port in URLs (0: the service has no preview router, and local previews no URLs). */
    readonly urlPort: number,
  ) {
    this.suffix = `.${domain}`;
  }

  private url(label: string, tenantId: string): string {
    if (!this.urlPort) return '';
    return `http://${label}.${dnsSlug(tenantId)}.${this.domain}${this.urlPort === 80 ? '' : `:${this.urlPort}`}/`;
  }

  runUrl(tenantId: string, runId: string): string {
    return this.url(`run-${runId.slice(0, 8).toLowerCase()}`, tenantId);
  }

  /** Empty for a run without a work item: it has only its run URL. */
  aliasUrl(tenantId: string, workItemId: string): string {
    return workItemId ? this.url(dnsSlug(workItemId), tenantId) : '';
  }

  /** Parses a Host header (`<label>.<tenant>.<domain>[:port]`, any case); undefined when it is not a preview host. */
  parse(host: string | undefined): PreviewHost | undefined {
    const name = (host ?? '').toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
    if (!name.endsWith(this.suffix)) return undefined;
    const labels = name.slice(0, -this.suffix.length).split('.');
    if (labels.length !== 2 || !labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) return undefined;
    const [label, tenantSlug] = labels as [string, string];
    const run = RUN_LABEL.exec(label);
    return { label: run ? { kind: 'run', id8: run[1]! } : { kind: 'alias', slug: label }, tenantSlug };
  }
}
