export { openDatabase, DatabaseUnavailableError, type Database, type Db } from './client.js';
export { DefinitionRepository, isUuid, type DefinitionRow } from './definitions.js';
export { idsWithPrefix, isIdPrefix, type IdKind } from './ids.js';
export { afterKey, keyTime, type ListKey } from './keyset.js';
export { PlanRepository, type PlanRow } from './plans.js';
export {
  DeliveryRepository,
  PlanApprovalRepository,
  ProfileRepository,
  WorkItemRepository,
  type PlanApproval,
  type ProfileRow,
  type WorkItemRow,
} from './backlog.js';
export { PullRequestRepository, type PullRequestReport, type PullRequestRow } from './pull-requests.js';
export {
  FINAL_DELIVERY_STATES,
  LATE_COMMIT_MS,
  NotificationRepository,
  type ChannelCounts,
  type DeliveryListRow,
  type DeliveryWork,
  type NewDelivery,
  type NewNotification,
  type NotificationDeliveryRow,
  type NotificationRow,
  type SubscriptionRow,
} from './notifications.js';
export { PreviewRepository, type LivePreview, type PreviewRow, type StoppedPreview } from './previews.js';
export { RUN_OUTPUT_KEEP_BYTES, RunOutputRepository, type NewRunOutput, type RunOutputQuery, type RunOutputRow } from './output.js';
export {
  isUniqueViolation,
  RunRepository,
  type FollowupRow,
  type RecordedStatusUpdate,
  type RunListKey,
  type RunRow,
  type NewRunRow,
  type RunProgress,
  type RunChange,
  type StatusUpdateRow,
} from './runs.js';
export type { RunSpec, RunState, Annotations } from './schema.js';
export {
  ATTACHED_TO,
  GovernanceRepository,
  type AttestationRow,
  type EvidenceRow,
  type GraphEdge,
  type GraphNode,
  type NewAttestationRow,
  type NewEvidenceRow,
} from './governance.js';
export { ImpedimentRepository, type ImpedimentRow, type ImpedimentStateName, type NewImpediment } from './impediments.js';
