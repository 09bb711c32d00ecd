import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { DefinitionSpecSchema, Phase } from '@ameide/contracts';
import { InvalidFieldError } from '../../src/errors.js';
import { normaliseDefinitionSpec } from '../../src/validation.js';

const policy = { allowNone: false, readOnlyPathPrefixes: [], egressAllowedHosts: ['registry.npmjs.org', 'api.openai.com', '*.internal'] };
const KEY = { name: 'OPENAI_API_KEY', phases: [Phase.AGENT], fromEnv: 'OPENAI_KEY' };
const codex = { kind: 'codex', model: 'gpt-5-codex', endpoint: 'https://api.openai.com/v1', apiKeySecret: 'OPENAI_API_KEY' };

/** The message of the InvalidArgument the spec gets, or the stored agent when accepted. */
function verdict(extra: object, agentCommand = ''): string {
  try {
    const spec = normaliseDefinitionSpec(create(DefinitionSpecSchema, { repoUrl: '/srv/repo.git', agentCommand, secrets: [KEY], ...extra }), policy);
    return `accepted (max_turns ${spec.agent?.maxTurns ?? '-'})`;
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidFieldError);
    return (err as Error).message;
  }
}

describe('the agent of a definition', () => {
  it('accepts the agent kinds with a model, an endpoint and a key, and fills max_turns', () => {
    expect(verdict({ agent: codex })).toBe('accepted (max_turns 50)');
    expect(verdict({ agent: { ...codex, kind: 'langchain', api: 'messages', maxTurns: 8 } })).toBe('accepted (max_turns 8)');
    expect(verdict({ agent: { kind: 'claude-code', model: 'claude-sonnet-4-5', endpoint: 'http://vllm.internal:8000' } })).toBe('accepted (max_turns 50)');
    // A command agent may use network mode `model` with an endpoint of its own.
    expect(verdict({ agent: { endpoint: 'https://api.openai.com/v1' }, guardrails: { network: { agentMode: 'model' } } }, 'node agent.js')).toBe(
      'accepted (max_turns 0)',
    );
    expect(verdict({}, 'node agent.js')).toBe('accepted (max_turns -)');
  });

  it('names the field to fix', () => {
    expect(verdict({})).toMatch(/^spec\.agent_command: must not be empty \(or set agent\.kind/);
    expect(verdict({ agent: { ...codex, kind: 'aider' } })).toMatch(/^spec\.agent\.kind: must be one of command, codex, claude-code, langchain/);
    expect(verdict({ agent: { ...codex, model: '' } })).toBe('spec.agent.model: must name the model the codex agent uses');
    expect(verdict({ agent: { ...codex, endpoint: '' } })).toMatch(/^spec\.agent\.endpoint: must be the base URL of the model API/);
    expect(verdict({ agent: { ...codex, endpoint: 'ftp://api.openai.com' } })).toMatch(/^spec\.agent\.endpoint: must be an http\(s\) URL naming a host/);
    expect(verdict({ agent: { ...codex, endpoint: 'https://user:pw@api.openai.com/v1' } })).toMatch(/no user or password/);
    expect(verdict({ agent: { ...codex, endpoint: 'http://10.0.0.7:8000/v1' } })).toMatch(/^spec\.agent\.endpoint: must name a host, not an IP address/);
    expect(verdict({ agent: { ...codex, endpoint: 'https://models.example.com/v1' } })).toBe(
      "spec.agent.endpoint: names models.example.com, which is outside the operator's egress allowlist (AMEIDE_EGRESS_ALLOWED_HOSTS: registry.npmjs.org, api.openai.com, *.internal)",
    );
    expect(verdict({ agent: { ...codex, api: 'chat' } })).toBe('spec.agent.api: must be responses for codex (or empty: responses)');
    expect(verdict({ agent: { ...codex, kind: 'claude-code', api: 'chat' } })).toBe('spec.agent.api: must be messages for claude-code (or empty: messages)');
    expect(verdict({ agent: { ...codex, apiKeySecret: 'NOPE' } })).toBe(
      'spec.agent.api_key_secret: must name a secret in spec.secrets given to the agent phase (none is named NOPE)',
    );
    expect(verdict({ agent: codex, secrets: [{ ...KEY, phases: [Phase.TEST] }] })).toMatch(/^spec\.agent\.api_key_secret: must name a secret/);
    expect(verdict({ agent: codex, guardrails: { network: { agent: false } } })).toMatch(
      /^spec\.guardrails\.network\.agent: leaves the codex agent no way to its model/,
    );
    expect(verdict({ guardrails: { network: { agentMode: 'model' } } }, 'x')).toMatch(/^spec\.agent\.endpoint: must be the base URL/);
    expect(verdict({ guardrails: { network: { agentMode: 'open' } } }, 'x')).toMatch(/^spec\.guardrails\.network\.agent_mode: must be "model"/);
    expect(verdict({ agent: { kind: 'command', model: 'gpt' } }, 'x')).toMatch(/^spec\.agent\.kind: must be codex, claude-code or langchain for model/);
  });
});
