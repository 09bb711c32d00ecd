export * from './search-attributes.js';
export * from './types.js';
export * from './names.js';
export * from './guardrails.js';
export * from './delivery.js';
export * from './followups.js';
export * from './agent.js';
