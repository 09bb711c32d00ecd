import { loadCliTemporalUi, processEnv, type CliTemporalUi, type Env } from '@ameide/config';
import type { WorkflowServiceClient } from '@ameide/sdk';

/** Where the command writes (the CLI's `Output`). */
interface Output {
  out(line: string): void;
}

/** A workflow's page in the Temporal Web UI: `<UI base>/namespaces/<ns>/workflows/<workflow id>`. */
export function workflowUiUrl(ui: CliTemporalUi, workflowId: string): string {
  return `${ui.uiUrl}/namespaces/${encodeURIComponent(ui.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/**
 * `ameide runs open <run>`: prints the Temporal Web UI URL of the run's workflow (the run by its id or
 * a short id). The UI is AMEIDE_TEMPORAL_UI_URL, else the `make up` stack's, else http://127.0.0.1:8233;
 * the namespace TEMPORAL_NAMESPACE (default `default`).
 */
export async function runsOpen(api: WorkflowServiceClient, runId: string, o: Output, env: Env = processEnv()): Promise<number> {
  const ui = loadCliTemporalUi(env);
  const { run } = await api.getWorkflowRun({ id: runId });
  o.out(workflowUiUrl(ui, run!.workflowId));
  return 0;
}
