export { startStack, type ChildStatus, type RunningStack, type StackFile, type StackInfo, type StackOptions } from './stack.js';
export { readStackFile } from './status.js';
export { startPostgres, createDatabase, type PostgresHandle } from './postgres.js';
export { startTemporal, findTemporalCli, type TemporalHandle } from './temporal.js';
export { hasPollers, waitForWorker } from './worker-ready.js';
export { freePort, portFree, waitForPort, PortInUseError, type PortPicker } from './net.js';
export { createOrigin, git } from './git-fixtures.js';
export { ensureCredentials, generatePassword, signDevToken, serviceApiKeys, type DevCredentials } from './credentials.js';
export { fetchPreview, SAMPLE_PREVIEW, sampleDefinition, SAMPLE_REPO, SCRIPTED_AGENT } from './demo.js';
