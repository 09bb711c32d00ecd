export * from './gen/ameide/workflows/v1/workflows_pb.js';
export { compactJson } from './json.js';
