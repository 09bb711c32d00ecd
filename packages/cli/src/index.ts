export { cli } from './main.js';
export { formatRun, formatStatusUpdate, statusName, phaseName, phaseStateName, seconds } from './format.js';
export { readDefinitionFile, type DefinitionFile } from './definition-file.js';
export { readWorkItemFile, readProfileFile, parseWorkItemState } from './backlog-file.js';
export { watchRun, type Output } from './commands.js';
export { restoreHandoff, fetchArtifact, type RestoreHandoffOptions, type RestoredHandoff, type FetchArtifactOptions } from './handoff.js';
export { createS3Loader } from './s3.js';
export { latestOutputLines, parsePhase, runsLogs } from './logs.js';
