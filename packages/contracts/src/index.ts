export * from './gen/ameide/workflows/v1/workflows_pb.js';
export { compactJson } from './json.js';
/** The standard gRPC server reflection API (grpc.reflection.v1), vendored for the reflection service. */
export * as reflectionV1 from './gen/grpc/reflection/v1/reflection_pb.js';
/** Work items and methodology profiles (ameide.backlog.v1). */
export * as backlogV1 from './gen/ameide/backlog/v1/backlog_pb.js';
/** Evidence, attestations, Definition of Done, impediments and notifications (ameide.governance.v1). */
export * as governanceV1 from './gen/ameide/governance/v1/governance_pb.js';
