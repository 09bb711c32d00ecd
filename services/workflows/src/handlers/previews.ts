import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import {
  ListPreviewsResponseSchema,
  PreviewSchema,
  RecordPreviewResponseSchema,
  type ListPreviewsRequest,
  type Preview,
  type RecordPreviewRequest,
} from '@ameide/contracts';
import { isUuid, type PlanRepository, type PreviewRepository, type PreviewRow, type RunRepository, type RunRow } from '@ameide/db';
import { InvalidFieldError, NotFoundError } from '../errors.js';
import type { PreviewHosts } from '../previews/hosts.js';
import type { PreviewRouteTable } from '../previews/table.js';
import type { RunLauncher } from '../temporal/facade.js';
import { filterId, pageSize, requireId } from '../validation.js';
import { PAGED_LISTS, pageAfter, pageOf } from '../page-token.js';
import { handle, principalOf, requireWorkerFor } from './context.js';

const STATES = ['live', 'stopped'];
const PROVIDERS = ['local', 'command'];
/** `host:port` of a local preview's server, as the service reaches it: a host name, IPv4 or [IPv6] address, and a port. */
const TARGET_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(\d{1,5})$/;

function httpUrl(field: string, value: string): string {
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !u.host) throw new InvalidFieldError(field, 'must be an http:// or https:// URL');
  return value;
}

/** What the service needs from Temporal for previews. */
export type PreviewSignals = Pick<RunLauncher, 'signalPreviewSuperseded' | 'signalPreviewLost'>;

/**
 * Previews of runs: the worker records them live and stopped (RecordPreview); people list them
 * (ListPreviews). Local previews are served by the preview router, whose routes change with every
 * record; a preview going live supersedes the older live previews of its work item.
 */
export class PreviewHandlers {
  constructor(
    private readonly previews: PreviewRepository,
    private readonly runs: RunRepository,
    private readonly plans: PlanRepository,
    private readonly signals: PreviewSignals,
    private readonly hosts: PreviewHosts,
    /** The router's routes in this process, dropped when a preview changes. */
    private readonly routes?: PreviewRouteTable,
  ) {}

  /** The API's view of a preview: local previews get the router's URLs, `command` ones keep what the worker sent. */
  private toProto(row: PreviewRow, aliased: boolean): Preview {
    const local = row.provider === 'local';
    return create(PreviewSchema, {
      runId: row.runId,
      workItemId: row.workItemId,
      provider: row.provider,
      url: local ? this.hosts.runUrl(row.tenantId, row.runId) : row.url,
      aliasUrl: local ? this.hosts.aliasUrl(row.tenantId, row.workItemId) : row.aliasUrl,
      state: row.state,
      aliased: aliased && row.state === 'live',
      liveTime: row.state === 'live' || row.stoppedAt === null || row.liveAt < row.stoppedAt ? timestampFromDate(row.liveAt) : undefined,
      expireTime: row.expiresAt ? timestampFromDate(row.expiresAt) : undefined,
      stopTime: row.stoppedAt ? timestampFromDate(row.stoppedAt) : undefined,
      stopReason: row.stopReason,
    });
  }

  /** A run's work item: its plan's first (the one its work branch is named after), else its methodology's first. */
  private async workItemOf(run: RunRow): Promise<string> {
    const plan = await this.plans.get(run.tenantId, run.planId);
    return plan?.spec.workItems?.[0]?.id || run.spec.workItemIds[0] || '';
  }

  /**
   * Tells the preview workflow of every older live preview of the work item that this one is newer.
   * They keep their routes until their worker reports them stopped; the alias has moved already (it
   * follows the newest live preview). A workflow that is gone is no error; Temporal being away is
   * logged only: the older previews then run until their TTL.
   */
  private async supersede(row: PreviewRow): Promise<void> {
    const older = await this.previews.olderLive(row.runId);
    await Promise.all(
      older.map((o) =>
        this.signals
          .signalPreviewSuperseded(o.runId, row.runId)
          .catch((err: Error) => console.warn(`could not tell the preview of run ${o.runId} that run ${row.runId}'s superseded it: ${err.message}`)),
      ),
    );
  }

  recordPreview = (req: RecordPreviewRequest, ctx: HandlerContext) =>
    handle(async () => {
      if (!principalOf(ctx).service) throw new ConnectError('only the worker service credential may record previews', Code.PermissionDenied);
      requireId('run_id', req.runId);
      if (!STATES.includes(req.state)) throw new InvalidFieldError('state', 'must be "live" or "stopped"');
      if (!PROVIDERS.includes(req.provider) && (req.state === 'live' || req.provider !== ''))
        throw new InvalidFieldError('provider', 'must be "local" or "command"');
      const live = req.state === 'live';
      if (live && req.provider === 'local') {
        const m = TARGET_RE.exec(req.target);
        if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
          throw new InvalidFieldError('target', "must be host:port of the preview's server (local provider), e.g. 127.0.0.1:41234");
      }
      if (live && req.provider === 'command') {
        if (!req.url) throw new InvalidFieldError('url', 'is required for the command provider');
        httpUrl('url', req.url);
        if (req.aliasUrl) httpUrl('alias_url', req.aliasUrl);
      }
      const run = isUuid(req.runId) ? await this.runs.get(undefined, req.runId) : undefined;
      if (!run) throw new NotFoundError('run', req.runId);
      requireWorkerFor(ctx, run.tenantId, 'record previews');
      const workItemId = await this.workItemOf(run);
      let row: PreviewRow;
      if (live) {
        const local = req.provider === 'local';
        ({ row } = await this.previews.upsertLive({
          runId: run.id,
          tenantId: run.tenantId,
          workItemId,
          provider: req.provider,
          target: local ? req.target : '',
          url: local ? '' : req.url,
          aliasUrl: local ? '' : req.aliasUrl,
          expiresAt: req.expireTime ? timestampDate(req.expireTime) : null,
        }));
        this.routes?.invalidate();
        // Repeats too: the answer to an earlier call may have been lost before it got this far.
        if (row.state === 'live') await this.supersede(row);
      } else {
        ({ row } = await this.previews.markStopped({
          runId: run.id,
          tenantId: run.tenantId,
          workItemId,
          provider: req.provider || 'local',
          reason: req.reason,
        }));
        this.routes?.invalidate();
        // A stop the preview's own workflow did not make (the worker restarted, the server exited):
        // the workflow ends now rather than at the TTL. Its own stop comes back here and changes nothing.
        void this.signals
          .signalPreviewLost(run.id, row.stopReason || 'the preview stopped')
          .catch((err: Error) => console.warn(`could not tell the preview workflow of run ${run.id} that its preview stopped: ${err.message}`));
      }
      const alias = row.state === 'live' ? await this.previews.aliasOf(row.tenantId, row.workItemId) : undefined;
      return create(RecordPreviewResponseSchema, { preview: this.toProto(row, alias?.runId === row.runId) });
    });

  listPreviews = (req: ListPreviewsRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      if (req.state && !STATES.includes(req.state)) throw new InvalidFieldError('state', 'must be "live", "stopped" or empty (both)');
      const runId = await filterId(this.runs, 'run', tenantId, 'run_id', req.runId);
      const list = PAGED_LISTS.previews;
      const filter = [tenantId, req.workItemId, runId ?? '', req.state];
      const size = pageSize(req.pageSize);
      const after = pageAfter(list, req.pageToken, filter);
      const { page: rows, nextPageToken } = pageOf(
        list,
        await this.previews.list(tenantId, { workItemId: req.workItemId || undefined, runId, state: req.state || undefined, limit: size + 1, after }),
        size,
        (r) => r.listKey,
        filter,
      );
      const aliases = await this.previews.aliasRuns(
        tenantId,
        rows.filter((r) => r.state === 'live').map((r) => r.workItemId),
      );
      return create(ListPreviewsResponseSchema, { previews: rows.map((r) => this.toProto(r, aliases.get(r.workItemId) === r.runId)), nextPageToken });
    });
}
