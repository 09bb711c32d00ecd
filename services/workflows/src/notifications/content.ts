/**
 * What a run notification says, independent of the channel it goes out on: the delivery pipeline
 * builds one from the run's stored state and hands it to the renderers (render.ts). Plain JSON, so it
 * can be stored with the delivery and passed through Temporal as it is. Every string may come from a
 * work item or a run's output: untrusted, escaped by whatever renders it.
 */

/** What happened; one notification per event and run. */
export type NotificationEvent = 'run_completed' | 'run_failed' | 'run_cancelled' | 'preview_live' | 'impediment_raised' | 'dod_failed';

export interface NotificationContent {
  event: NotificationEvent;
  tenantId: string;
  /** When the event happened (ISO 8601), when known. */
  occurredAt?: string;
  run: {
    id: string;
    /** completed, failed, handed_off, cancelled (or running, for a preview of a run still going). */
    status: string;
    /** The name of the run's definition. */
    definition: string;
    workItemId: string;
    /** The work item's title. */
    title: string;
    branch: string;
    error?: string;
    baseCommit?: string;
    headCommit?: string;
    filesChanged?: number;
    insertions?: number;
    deletions?: number;
    tests?: { passed: number; failed: number; skipped: number; failingTests: string[] };
    pullRequest?: { provider: string; number: number; url: string; state: string };
    /** The handoff bundle of a run that could not finish. */
    handoffUri?: string;
    durationMs?: number;
  };
  /** The run's preview: its own URL and the work item's alias (which follows the item's latest run). */
  preview?: { url: string; aliasUrl: string };
  /** The Definition of Done checklist, once evaluated. */
  dod?: { met: boolean; rules: { rule: string; passed: boolean; detail: string }[] };
  evidence: { kind: string; name: string; uri: string; sha256: string; sizeBytes: number }[];
  /** The impediment the run raised, if it raised one. */
  impediment?: { id: string; cause: string; reason: string; phase: string; handoffUri: string };
  /** Built from the configured public URL by the caller. */
  links: { run: string };
}
