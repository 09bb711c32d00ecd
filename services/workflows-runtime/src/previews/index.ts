import { createHash } from 'node:crypto';
import { hostname } from 'node:os';

export { holdForPreview, stopHeldPreviews, stopLeftoverPreviews, stopLocalPreview, type PreviewDeps } from './local.js';
export { parsePreviewUrls } from './urls.js';

/**
 * The task queue of this worker's own previews: a local preview's process and listener live in the
 * worker that started it, so its stop must run there. One per host and workspace directory, e.g.
 * `coding-agent-previews-3f2a9c1b07de`.
 */
export function previewStopQueue(taskQueue: string, workspaceDir: string, host = hostname()): string {
  return `${taskQueue}-previews-${createHash('sha256').update(`${host}\0${workspaceDir}`).digest('hex').slice(0, 12)}`;
}
