import { describe, expect, it } from 'vitest';
import type { RecordStatusUpdateRequest, RecordStatusUpdatesRequest } from '@ameide/contracts';
import { Code, ConnectError, type WorkflowServiceClient } from '@ameide/sdk';
import type { StatusUpdateInput } from '@ameide/temporal';
import { sendStatusUpdates, STATUS_BATCH } from '../../src/activities/status.js';

const updates = (n: number): StatusUpdateInput[] =>
  Array.from({ length: n }, (_, i) => ({
    runId: '00000000-0000-4000-8000-000000000001',
    sequence: i + 1,
    kind: 'phase_started',
    time: '2024-01-01T00:00:00Z',
  }));

/** A fake service: what each call got; `batch` answers RecordStatusUpdates, `single` RecordStatusUpdate. */
function fake(batch: (n: number) => void, single: (sequence: number) => void = () => {}) {
  const calls: string[] = [];
  const client = {
    recordStatusUpdates: async (req: RecordStatusUpdatesRequest) => {
      calls.push(`batch ${req.updates.map((u) => u.sequence).join(',')}`);
      batch(req.updates.length);
      return { duplicate: req.updates.map(() => false) };
    },
    recordStatusUpdate: async (req: RecordStatusUpdateRequest) => {
      calls.push(`one ${req.update!.sequence}`);
      single(Number(req.update!.sequence));
      return { duplicate: false };
    },
  } as unknown as WorkflowServiceClient;
  return { client, calls };
}

describe('sendStatusUpdates', () => {
  it(`sends a run's updates in calls of at most ${STATUS_BATCH}, in order`, async () => {
    const { client, calls } = fake(() => {});
    expect(await sendStatusUpdates(client, updates(STATUS_BATCH + 2))).toEqual({ refused: [] });
    expect(calls).toEqual([`batch ${updates(STATUS_BATCH).map((u) => u.sequence)}`, `batch ${STATUS_BATCH + 1},${STATUS_BATCH + 2}`]);
  });

  it('goes one at a time when the service does not know the batch call', async () => {
    const { client, calls } = fake(() => {
      throw new ConnectError('no such method', Code.Unimplemented);
    });
    expect(await sendStatusUpdates(client, updates(3))).toEqual({ refused: [] });
    expect(calls).toEqual(['batch 1,2,3', 'one 1', 'one 2', 'one 3']);
  });

  it('goes one at a time when the batch is refused, skipping and naming the bad update only', async () => {
    const { client, calls } = fake(
      () => {
        throw new ConnectError('updates[1].sequence: bad', Code.InvalidArgument);
      },
      (sequence) => {
        if (sequence === 2) throw new ConnectError('update.sequence: bad', Code.InvalidArgument);
      },
    );
    const { refused } = await sendStatusUpdates(client, updates(3));
    expect(refused.map((r) => r.sequence)).toEqual([2]);
    expect(calls).toEqual(['batch 1,2,3', 'one 1', 'one 2', 'one 3']);
  });

  it('throws a transient failure (the activity is retried)', async () => {
    const { client, calls } = fake(() => {
      throw new ConnectError('down', Code.Unavailable);
    });
    await expect(sendStatusUpdates(client, updates(3))).rejects.toThrow(/down/);
    expect(calls).toEqual(['batch 1,2,3']);
  });
});
