export * from './gen/ameide/workflows/v1/workflows_pb.js';
export { compactJson } from './json.js';
/** The standard gRPC server reflection API (grpc.reflection.v1), vendored for the reflection service. */
export * as reflectionV1 from './gen/grpc/reflection/v1/reflection_pb.js';
