import type { EventEmitter } from 'node:events';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type { ServiceConfig } from '@ameide/config';
import type { governanceV1, Run, StartWorkflowRunRequestSchema } from '@ameide/contracts';
import type { Db } from '@ameide/db';

/** The GovernanceService methods one module serves (the modules' parts are merged into one service). */
export type GovernanceRoutes = Partial<ServiceImpl<typeof governanceV1.GovernanceService>>;

/** What the governance handlers and the follow-up activities share. */
export interface GovernanceDeps {
  db: Db;
  /** Starts a run exactly like StartWorkflowRun does for `tenantId` (a `requestId` makes it idempotent). */
  startRun(tenantId: string, req: MessageInitShape<typeof StartWorkflowRunRequestSchema>): Promise<Run>;
  notifications: ServiceConfig['notifications'];
  /** In-process events, e.g. a new notification, to wake this process's watch streams at once. */
  events: EventEmitter;
}
