import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { attestations, elements, evidence, relationships } from './schema.js';

export type EvidenceRow = typeof evidence.$inferSelect;
export type NewEvidenceRow = typeof evidence.$inferInsert;
export type AttestationRow = typeof attestations.$inferSelect;
export type NewAttestationRow = typeof attestations.$inferInsert;

/** A node of the methodology graph. */
export interface GraphNode {
  kind: string;
  id: string;
  attributes?: Record<string, unknown>;
}

/** An edge of the methodology graph, e.g. evidence `attached_to` an increment. */
export interface GraphEdge {
  from: GraphNode;
  kind: string;
  to: GraphNode;
}

/** The relationship that attaches evidence and attestations to what they prove. */
export const ATTACHED_TO = 'attached_to';

/** Evidence, attestations and the methodology graph (elements and relationships) they hang in. */
export class GovernanceRepository {
  constructor(private readonly db: Db) {}

  /** Registers evidence once per run and name (a repeat changes nothing); returns the run's evidence. */
  async addEvidence(runId: string, rows: NewEvidenceRow[]): Promise<EvidenceRow[]> {
    if (rows.length) await this.db.insert(evidence).values(rows).onConflictDoNothing();
    return this.evidenceOfRun(runId);
  }

  async evidenceOfRun(runId: string): Promise<EvidenceRow[]> {
    return this.db.select().from(evidence).where(eq(evidence.runId, runId)).orderBy(asc(evidence.name));
  }

  /** Stores an attestation once per run and predicate type; returns the stored one (the first, on a repeat). */
  async addAttestation(row: NewAttestationRow): Promise<AttestationRow> {
    await this.db.insert(attestations).values(row).onConflictDoNothing();
    const [stored] = await this.db
      .select()
      .from(attestations)
      .where(and(eq(attestations.runId, row.runId), eq(attestations.predicateType, row.predicateType)));
    return stored!;
  }

  async attestationsOfRun(runId: string): Promise<AttestationRow[]> {
    return this.db.select().from(attestations).where(eq(attestations.runId, runId)).orderBy(asc(attestations.predicateType));
  }

  /** Adds nodes and edges (idempotent: existing ones are kept as they are). */
  async link(tenantId: string, edges: GraphEdge[]): Promise<void> {
    if (!edges.length) return;
    const nodes = new Map<string, GraphNode>();
    for (const e of edges) for (const n of [e.from, e.to]) if (!nodes.has(`${n.kind}\n${n.id}`)) nodes.set(`${n.kind}\n${n.id}`, n);
    await this.db.transaction(async (tx) => {
      await tx
        .insert(elements)
        .values([...nodes.values()].map((n) => ({ tenantId, kind: n.kind, id: n.id, attributes: n.attributes ?? {} })))
        .onConflictDoNothing();
      await tx
        .insert(relationships)
        .values(edges.map((e) => ({ tenantId, fromKind: e.from.kind, fromId: e.from.id, kind: e.kind, toKind: e.to.kind, toId: e.to.id })))
        .onConflictDoNothing();
    });
  }

  /** Ids of the `fromKind` nodes attached to a node (e.g. the evidence of a work item). */
  private attachedTo(tenantId: string, fromKind: string, to: { kind: string; id: string }) {
    return this.db
      .select({ id: relationships.fromId })
      .from(relationships)
      .where(
        and(
          eq(relationships.tenantId, tenantId),
          eq(relationships.toKind, to.kind),
          eq(relationships.toId, to.id),
          eq(relationships.kind, ATTACHED_TO),
          eq(relationships.fromKind, fromKind),
        ),
      );
  }

  /**
   * A page of a run's evidence, by name, after the evidence `afterId` (its name is looked up: a page
   * token holds only the id).
   */
  async evidencePageOfRun(runId: string, limit: number, afterId?: string): Promise<EvidenceRow[]> {
    const after = afterId ? sql`${evidence.name} > (select e.name from ${evidence} e where e.id = ${afterId}::uuid and e.run_id = ${runId}::uuid)` : undefined;
    return this.db
      .select()
      .from(evidence)
      .where(and(eq(evidence.runId, runId), after))
      .orderBy(asc(evidence.name))
      .limit(limit);
  }

  /** A page of a run's attestations, by predicate type, after the attestation `afterId`. */
  async attestationPageOfRun(runId: string, limit: number, afterId?: string): Promise<AttestationRow[]> {
    const after = afterId
      ? sql`${attestations.predicateType} > (select a.predicate_type from ${attestations} a where a.id = ${afterId}::uuid and a.run_id = ${runId}::uuid)`
      : undefined;
    return this.db
      .select()
      .from(attestations)
      .where(and(eq(attestations.runId, runId), after))
      .orderBy(asc(attestations.predicateType))
      .limit(limit);
  }

  /**
   * Evidence attached to a node of the graph (a work item, timebox, goal, increment, …), oldest first
   * (then by name and id), after the evidence `afterId`.
   */
  async evidenceAttachedTo(tenantId: string, to: { kind: string; id: string }, limit: number, afterId?: string): Promise<EvidenceRow[]> {
    const after = afterId
      ? sql`(${evidence.createdAt}, ${evidence.name}, ${evidence.id}) > (select e.created_at, e.name, e.id from ${evidence} e where e.id = ${afterId}::uuid and e.tenant_id = ${tenantId})`
      : undefined;
    return this.db
      .select()
      .from(evidence)
      .where(and(eq(evidence.tenantId, tenantId), inArray(sql`${evidence.id}::text`, this.attachedTo(tenantId, 'evidence', to)), after))
      .orderBy(asc(evidence.createdAt), asc(evidence.name), asc(evidence.id))
      .limit(limit);
  }

  /** Attestations attached to a node of the graph, oldest first (then by predicate type and id), after the attestation `afterId`. */
  async attestationsAttachedTo(tenantId: string, to: { kind: string; id: string }, limit: number, afterId?: string): Promise<AttestationRow[]> {
    const after = afterId
      ? sql`(${attestations.createdAt}, ${attestations.predicateType}, ${attestations.id}) > (select a.created_at, a.predicate_type, a.id from ${attestations} a where a.id = ${afterId}::uuid and a.tenant_id = ${tenantId})`
      : undefined;
    return this.db
      .select()
      .from(attestations)
      .where(and(eq(attestations.tenantId, tenantId), inArray(sql`${attestations.id}::text`, this.attachedTo(tenantId, 'attestation', to)), after))
      .orderBy(asc(attestations.createdAt), asc(attestations.predicateType), asc(attestations.id))
      .limit(limit);
  }
}
