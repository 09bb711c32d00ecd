export { startWorkflowService, type WorkflowServiceApp } from './app.js';
export { createAuthenticator, type Principal } from './auth.js';
export { foldStatusUpdate, isTerminal } from './runs/fold.js';
