import type { PhaseUnit } from './context.js';
import { commandPhase } from './phases/command.js';
import { prepare } from './phases/prepare.js';
import { preview } from './phases/preview.js';
import { publish } from './phases/publish.js';
import { pullRequest } from './phases/pull-request.js';

/** The phases of a coding-agent run, in order; the report phase always follows (see run.ts). */
export const PIPELINE: readonly PhaseUnit[] = [prepare, commandPhase('install'), commandPhase('agent'), commandPhase('test'), publish, preview, pullRequest];
