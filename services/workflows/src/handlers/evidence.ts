import { create, fromJson, type JsonObject } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import { governanceV1 } from '@ameide/contracts';
import { GovernanceRepository, RunRepository, type AttestationRow, type EvidenceRow } from '@ameide/db';
import { InvalidFieldError, NotFoundError } from '../errors.js';
import type { GovernanceDeps, GovernanceRoutes } from '../governance/deps.js';
import type { SigningKeys } from '../governance/signing.js';
import { pageSize, requireId, resolveId } from '../validation.js';
import { PAGED_LISTS, encodePageToken, pageAfter } from '../page-token.js';
import { handle, principalOf } from './context.js';

export function evidenceToProto(e: EvidenceRow): governanceV1.Evidence {
  return create(governanceV1.EvidenceSchema, {
    id: e.id,
    tenantId: e.tenantId,
    runId: e.runId,
    kind: e.kind,
    name: e.name,
    uri: e.uri,
    sha256: e.sha256,
    sizeBytes: BigInt(e.sizeBytes),
    mediaType: e.mediaType,
    provenance: fromJson(governanceV1.ProvenanceSchema, e.provenance as JsonObject, { ignoreUnknownFields: true }),
    createTime: timestampFromDate(e.createdAt),
  });
}

export function attestationToProto(a: AttestationRow): governanceV1.Attestation {
  return create(governanceV1.AttestationSchema, {
    id: a.id,
    tenantId: a.tenantId,
    runId: a.runId,
    subjects: a.subjects,
    predicateType: a.predicateType,
    artifacts: a.artifacts,
    keyId: a.keyId,
    development: a.development,
    envelope: { payloadType: a.envelope.payloadType, payload: a.envelope.payload, signatures: a.envelope.signatures },
    createTime: timestampFromDate(a.createdAt),
  });
}

/** ListEvidence and GetSigningKeys. */
export function evidenceRoutes(deps: GovernanceDeps, signing?: SigningKeys): GovernanceRoutes {
  const runs = new RunRepository(deps.db);
  const gov = new GovernanceRepository(deps.db);
  return {
    listEvidence: (req: governanceV1.ListEvidenceRequest, ctx: HandlerContext) =>
      handle(async () => {
        const { tenantId } = principalOf(ctx);
        const size = pageSize(req.pageSize);
        const selectors = [
          req.runId && 'run_id',
          req.workItemId && 'work_item_id',
          req.timeboxId && 'timebox_id',
          req.goalId && 'goal_id',
          req.artifact && 'artifact',
        ].filter(Boolean);
        if (selectors.length !== 1) throw new InvalidFieldError('run_id', 'set exactly one of run_id, work_item_id, timebox_id, goal_id or artifact');
        // Each page holds up to `size` of each list. The token holds, for each, the id of the last one
        // listed (the list goes on after it) or null (it has ended).
        let evidencePage: (limit: number, afterId?: string) => Promise<EvidenceRow[]>;
        let attestationPage: (limit: number, afterId?: string) => Promise<AttestationRow[]>;
        let filter: unknown[];
        if (req.runId) {
          const runId = await resolveId(runs, 'run', tenantId, 'run_id', req.runId);
          const run = runId ? await runs.get(tenantId, runId) : undefined;
          if (!run) throw new NotFoundError('run', req.runId);
          filter = [tenantId, 'run', run.id];
          evidencePage = (limit, afterId) => gov.evidencePageOfRun(run.id, limit, afterId);
          attestationPage = (limit, afterId) => gov.attestationPageOfRun(run.id, limit, afterId);
        } else {
          let node: { kind: string; id: string };
          if (req.artifact) {
            if (!req.artifact.kind) throw new InvalidFieldError('artifact.kind', 'is required (e.g. increment, pi_objective, adm_deliverable)');
            node = { kind: req.artifact.kind, id: requireId('artifact.id', req.artifact.id) };
          } else if (req.workItemId) node = { kind: 'work_item', id: req.workItemId };
          else if (req.timeboxId) node = { kind: 'timebox', id: req.timeboxId };
          else node = { kind: 'goal', id: req.goalId };
          filter = [tenantId, node.kind, node.id];
          evidencePage = (limit, afterId) => gov.evidenceAttachedTo(tenantId, node, limit, afterId);
          attestationPage = (limit, afterId) => gov.attestationsAttachedTo(tenantId, node, limit, afterId);
        }
        const list = PAGED_LISTS.evidence;
        const after = pageAfter(list, req.pageToken, filter) as [string | null, string | null] | undefined;
        const [evidence, attestations] = await Promise.all([
          after && after[0] === null ? [] : evidencePage(size + 1, after?.[0] ?? undefined),
          after && after[1] === null ? [] : attestationPage(size + 1, after?.[1] ?? undefined),
        ]);
        const evidenceNext = evidence.length > size ? evidence[size - 1]!.id : null;
        const attestationNext = attestations.length > size ? attestations[size - 1]!.id : null;
        return create(governanceV1.ListEvidenceResponseSchema, {
          evidence: evidence.slice(0, size).map(evidenceToProto),
          attestations: attestations.slice(0, size).map(attestationToProto),
          nextPageToken: evidenceNext || attestationNext ? encodePageToken(list, [evidenceNext, attestationNext], filter) : '',
        });
      }),

    getSigningKeys: () => handle(() => Promise.resolve(create(governanceV1.GetSigningKeysResponseSchema, { keys: signing?.published() ?? [] }))),
  };
}
