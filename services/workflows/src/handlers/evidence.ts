import { create, fromJson, type JsonObject } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import { governanceV1 } from '@ameide/contracts';
import { GovernanceRepository, RunRepository, type AttestationRow, type EvidenceRow } from '@ameide/db';
import { InvalidFieldError, NotFoundError } from '../errors.js';
import type { GovernanceDeps, GovernanceRoutes } from '../governance/deps.js';
import type { SigningKeys } from '../governance/signing.js';
import { pageSize, requireId, resolveId } from '../validation.js';
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
        const limit = pageSize(req.pageSize);
        const selectors = [
          req.runId && 'run_id',
          req.workItemId && 'work_item_id',
          req.timeboxId && 'timebox_id',
          req.goalId && 'goal_id',
          req.artifact && 'artifact',
        ].filter(Boolean);
        if (selectors.length !== 1) throw new InvalidFieldError('run_id', 'set exactly one of run_id, work_item_id, timebox_id, goal_id or artifact');
        if (req.runId) {
          const runId = await resolveId(runs, 'run', tenantId, 'run_id', req.runId);
          const run = runId ? await runs.get(tenantId, runId) : undefined;
          if (!run) throw new NotFoundError('run', req.runId);
          const [evidence, attestations] = await Promise.all([gov.evidenceOfRun(run.id), gov.attestationsOfRun(run.id)]);
          return create(governanceV1.ListEvidenceResponseSchema, {
            evidence: evidence.slice(0, limit).map(evidenceToProto),
            attestations: attestations.map(attestationToProto),
          });
        }
        let node: { kind: string; id: string };
        if (req.artifact) {
          if (!req.artifact.kind) throw new InvalidFieldError('artifact.kind', 'is required (e.g. increment, pi_objective, adm_deliverable)');
          node = { kind: req.artifact.kind, id: requireId('artifact.id', req.artifact.id) };
        } else if (req.workItemId) node = { kind: 'work_item', id: req.workItemId };
        else if (req.timeboxId) node = { kind: 'timebox', id: req.timeboxId };
        else node = { kind: 'goal', id: req.goalId };
        const [evidence, attestations] = await Promise.all([gov.evidenceAttachedTo(tenantId, node, limit), gov.attestationsAttachedTo(tenantId, node, limit)]);
        return create(governanceV1.ListEvidenceResponseSchema, { evidence: evidence.map(evidenceToProto), attestations: attestations.map(attestationToProto) });
      }),

    getSigningKeys: () => handle(() => Promise.resolve(create(governanceV1.GetSigningKeysResponseSchema, { keys: signing?.published() ?? [] }))),
  };
}
