import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCliTemporalUi } from '@ameide/config';
import type { WorkflowServiceClient } from '@ameide/sdk';
import { runsOpen } from '../src/open.js';

describe('ameide runs open', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  /** An AMEIDE_HOME whose `make up` stack recorded `stack`. */
  const home = (stack: object) => {
    const dir = mkdtempSync(join(tmpdir(), 'ameide-open-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'stack'));
    writeFileSync(join(dir, 'stack', 'stack.json'), JSON.stringify(stack));
    return dir;
  };

  it('prints the Web UI page of the run’s workflow, for the run the API resolves (short ids too)', async () => {
    const asked: string[] = [];
    const api = {
      getWorkflowRun: async ({ id }: { id: string }) => {
        asked.push(id);
        return { run: { id: '3f2a9c01-0000-4000-8000-000000000001', workflowId: 'coding-run-3f2a9c01-0000-4000-8000-000000000001' } };
      },
    } as unknown as WorkflowServiceClient;
    const lines: string[] = [];
    const code = await runsOpen(
      api,
      '3f2a9c',
      { out: (l) => lines.push(l) },
      { AMEIDE_TEMPORAL_UI_URL: 'https://temporal.example/ui/', TEMPORAL_NAMESPACE: 'ameide prod' },
    );
    expect(code).toBe(0);
    expect(asked).toEqual(['3f2a9c']);
    expect(lines).toEqual(['https://temporal.example/ui/namespaces/ameide%20prod/workflows/coding-run-3f2a9c01-0000-4000-8000-000000000001']);
  });

  it('takes the UI from AMEIDE_TEMPORAL_UI_URL, else the make up stack, else the dev server’s port', () => {
    const stack = home({ apiUrl: 'http://127.0.0.1:8080', temporalUiUrl: 'http://127.0.0.1:18233' });
    expect(loadCliTemporalUi({ AMEIDE_HOME: stack })).toEqual({ uiUrl: 'http://127.0.0.1:18233', namespace: 'default' });
    expect(loadCliTemporalUi({ AMEIDE_HOME: stack, AMEIDE_TEMPORAL_UI_URL: 'http://ui.internal:8080' }).uiUrl).toBe('http://ui.internal:8080');
    // A stack on an external Temporal records no UI.
    expect(loadCliTemporalUi({ AMEIDE_HOME: home({ apiUrl: 'http://127.0.0.1:8080' }) }).uiUrl).toBe('http://127.0.0.1:8233');
    expect(() => loadCliTemporalUi({ AMEIDE_TEMPORAL_UI_URL: 'ftp://x' })).toThrow(/AMEIDE_TEMPORAL_UI_URL/);
  });
});
