import type { PreviewRepository, PreviewRow } from '@ameide/db';
import { dnsSlug, type PreviewHost } from './hosts.js';

/** Where a preview host leads: a live preview, the preview that stopped last, or nothing. */
export type Route = { kind: 'live'; preview: PreviewRow } | { kind: 'stopped'; preview: PreviewRow } | { kind: 'none' };

interface Snapshot {
  at: number;
  /** `<tenant slug> <id8>` and `<tenant slug> <work item slug>` → previews, newest live first. */
  byRun: Map<string, PreviewRow[]>;
  byAlias: Map<string, PreviewRow[]>;
}

/** How long a read of the routes serves requests: an alias moves within this on every replica. */
export const ROUTES_TTL_MS = 1000;
/** How far back stopped previews are kept in the routes, to say why their hosts no longer answer. */
const STOPPED_WINDOW_MS = 24 * 3600_000;

function add(map: Map<string, PreviewRow[]>, key: string, row: PreviewRow): void {
  const rows = map.get(key);
  if (rows) rows.push(row);
  else map.set(key, [row]);
}

/** The newest live preview of `rows` (they come newest first), else the one that stopped last. */
function pick(rows: PreviewRow[] | undefined): Route {
  if (!rows) return { kind: 'none' };
  const live = rows.find((r) => r.state === 'live');
  if (live) return { kind: 'live', preview: live };
  const stopped = rows.reduce((a, b) => ((b.stoppedAt?.getTime() ?? 0) > (a.stoppedAt?.getTime() ?? 0) ? b : a));
  return { kind: 'stopped', preview: stopped };
}

/**
 * The preview router's routes. Host names carry slugs, not ids, so the routes are read whole: every
 * live preview and those stopped within a day (one read of the previews table), indexed by slug. A
 * read serves for ROUTES_TTL_MS and is shared by the requests that arrive meanwhile; a preview
 * recorded through this process drops it at once (`invalidate`), so here an alias moves with the
 * RecordPreview call, on other replicas within ROUTES_TTL_MS.
 */
export class PreviewRouteTable {
  private snapshot?: Snapshot;
  private loading?: { generation: number; promise: Promise<Snapshot> };
  private generation = 0;

  constructor(
    private readonly previews: PreviewRepository,
    private readonly ttlMs = ROUTES_TTL_MS,
  ) {}

  /** Forgets the routes read so far (a preview changed). */
  invalidate(): void {
    this.generation++;
    this.snapshot = undefined;
  }

  async resolve(host: PreviewHost): Promise<Route> {
    const s = await this.current();
    const label = host.label;
    return pick(label.kind === 'run' ? s.byRun.get(`${host.tenantSlug} ${label.id8}`) : s.byAlias.get(`${host.tenantSlug} ${label.slug}`));
  }

  private async current(): Promise<Snapshot> {
    if (this.snapshot && Date.now() - this.snapshot.at < this.ttlMs) return this.snapshot;
    // A read begun before the last invalidate() may miss that change: start another.
    if (this.loading?.generation !== this.generation) {
      const generation = this.generation;
      const promise = this.load().then(
        (s) => {
          if (this.generation === generation) this.snapshot = s;
          if (this.loading?.promise === promise) this.loading = undefined;
          return s;
        },
        (err: unknown) => {
          if (this.loading?.promise === promise) this.loading = undefined;
          throw err;
        },
      );
      this.loading = { generation, promise };
    }
    return this.loading!.promise;
  }

  private async load(): Promise<Snapshot> {
    const at = Date.now();
    const rows = await this.previews.routable(new Date(at - STOPPED_WINDOW_MS));
    const s: Snapshot = { at, byRun: new Map(), byAlias: new Map() };
    const slugs = new Map<string, string>();
    const slug = (id: string) => {
      let v = slugs.get(id);
      if (v === undefined) slugs.set(id, (v = dnsSlug(id)));
      return v;
    };
    for (const r of rows) {
      const tenant = slug(r.tenantId);
      add(s.byRun, `${tenant} ${r.runId.slice(0, 8)}`, r);
      if (r.workItemId) add(s.byAlias, `${tenant} ${slug(r.workItemId)}`, r);
    }
    return s;
  }
}
