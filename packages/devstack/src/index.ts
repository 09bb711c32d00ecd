export { startStack, type RunningStack, type StackInfo } from './stack.js';
export { startPostgres, createDatabase, type PostgresHandle } from './postgres.js';
export { startTemporal, findTemporalCli, type TemporalHandle } from './temporal.js';
export { freePort, waitForPort } from './net.js';
export { createOrigin, git } from './git-fixtures.js';
export { ensureCredentials, generatePassword, signDevToken, serviceApiKeys, type DevCredentials } from './credentials.js';
export { sampleDefinition, SAMPLE_REPO, SCRIPTED_AGENT } from './demo.js';
