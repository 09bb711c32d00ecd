import { create } from '@bufbuild/protobuf';
import { expect, it } from 'vitest';
import { AgentRunSchema, EgressDestinationSchema } from '@ameide/contracts';
import { formatAgent, formatEgress } from '../src/format.js';

it('shows what a coding agent did and where the online phases went', () => {
  const agent = create(AgentRunSchema, {
    kind: 'codex',
    model: 'gpt-5-codex',
    turns: 3,
    toolCalls: 2,
    inputTokens: 300n,
    outputTokens: 60n,
    stopped: 'the agent was stopped after 2 model calls (maxTurns 2)',
    finalMessage: 'Added multiply.\nDetails follow.',
    transcriptUri: 'file:///runs/acme/r1/agent/transcript.jsonl',
  });
  expect(formatAgent(agent)).toEqual([
    'agent       codex gpt-5-codex: 3 model calls, 2 tool calls, 300 tokens in, 60 out',
    '            stopped: the agent was stopped after 2 model calls (maxTurns 2)',
    '            said: Added multiply.',
    '            turns: file:///runs/acme/r1/agent/transcript.jsonl',
  ]);
  const egress = [
    create(EgressDestinationSchema, { phase: 'agent', destination: 'api.openai.com:443', allowed: true, count: 3 }),
    create(EgressDestinationSchema, { phase: 'agent', destination: 'example.org:443', count: 1, reason: 'not in the allowlist' }),
    create(EgressDestinationSchema, { phase: 'install', destination: 'registry.npmjs.org:443', count: 2, reason: 'failed: connect failed (ECONNREFUSED)' }),
  ];
  expect(formatEgress(egress)).toEqual([
    'egress      agent    allowed api.openai.com:443 ×3',
    '            agent    refused example.org:443 ×1 (not in the allowlist)',
    '            install  failed  registry.npmjs.org:443 ×2 (failed: connect failed (ECONNREFUSED))',
  ]);
});
