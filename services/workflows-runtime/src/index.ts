export { createCodingWorker, workflowBundle, type CodingWorker } from './worker.js';
export { createActivities, type Activities, type ActivityDeps } from './activities/index.js';
export { createPreviewActivities, type PreviewDeps, type StartPreviewInput, type StopPreviewInput } from './activities/previews.js';
export { holdForPreview, previewStopQueue, stopLeftoverPreviews } from './previews/index.js';
export { runCommand, OutputTail, TIMEOUT_EXIT_CODE } from './activities/exec.js';
export { FileArtifactStore, openArtifactStore, type ArtifactStore } from './artifacts.js';
