export { ConfigError } from './errors.js';
export { ameideHome, childEnv, defaultWorkspaceDir, processEnv, toolEnv, type Env } from './env.js';
export { loadServiceConfig, type ApiKey, type ServiceConfig } from './service.js';
export { loadS3Settings, loadWorkerConfig, type ArtifactS3Config, type WorkerConfig } from './worker.js';
export {
  cliColor,
  cliColumns,
  cliConfigPath,
  cliWorkingDir,
  findStackInfo,
  loadCliConfig,
  readCliContexts,
  stackInfoPath,
  writeCliContexts,
  type CliConfig,
  type CliContext,
  type CliContexts,
} from './cli.js';
export { loadCliTemporalUi, type CliTemporalUi } from './cli.js';
export { loadTelemetryConfig, type TelemetryConfig } from './telemetry.js';
export type { TemporalConfig } from './temporal.js';
export { runMain } from './main.js';
export { loadStackConfig, stackDir, type StackConfig } from './stack.js';
export { DEFAULT_EGRESS_HOSTS, egressPatternAllowed, isHostPattern, underPrefix, type SandboxPolicy } from './policy.js';
