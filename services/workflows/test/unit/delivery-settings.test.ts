import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { DefinitionSpecSchema } from '@ameide/contracts';
import { InvalidFieldError } from '../../src/errors.js';
import { normaliseDefinitionSpec } from '../../src/validation.js';

const policy = { allowNone: false, readOnlyPathPrefixes: [], egressAllowedHosts: ['registry.npmjs.org'] };
const spec = (extra: object) => create(DefinitionSpecSchema, { repoUrl: '/srv/repo.git', agentCommand: 'true', ...extra });

/** The message of the InvalidArgument the spec gets, or "accepted". */
function verdict(extra: object): string {
  try {
    normaliseDefinitionSpec(spec(extra), policy);
    return 'accepted';
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidFieldError);
    return (err as Error).message;
  }
}

describe('preview and pull request settings of a definition', () => {
  it('accepts what the docs describe', () => {
    expect(verdict({ preview: { command: 'npm run preview', healthPath: '/health', ttlSeconds: 600 } })).toBe('accepted');
    expect(verdict({ preview: { provider: 'command', command: './deploy.sh', aliasCommand: './alias.sh' } })).toBe('accepted');
    expect(verdict({ pullRequest: { provider: 'github', tokenFromEnv: 'GH_TOKEN', labels: ['agent'], reviewers: ['alice'], repository: 'acme/app' } })).toBe(
      'accepted',
    );
    expect(verdict({ pullRequest: { provider: 'gitlab', tokenFromEnv: 'GL', apiUrl: 'https://gitlab.example.com/api/v4', repository: 'g/sub/p' } })).toBe(
      'accepted',
    );
    expect(verdict({ pullRequest: { provider: 'none' } })).toBe('accepted');
  });

  it('names the field to fix', () => {
    expect(verdict({ preview: { provider: 'vercel', command: 'x' } })).toMatch(/^spec\.preview\.provider: must be "local" or "command"/);
    expect(verdict({ preview: { healthPath: '/health' } })).toMatch(/^spec\.preview\.command: must not be empty/);
    expect(verdict({ preview: { command: 'x', healthPath: 'health' } })).toMatch(/^spec\.preview\.health_path: must be a URL path/);
    expect(verdict({ preview: { command: 'x', aliasCommand: 'y' } })).toMatch(/^spec\.preview\.alias_command: is only for provider "command"/);
    expect(verdict({ pullRequest: { provider: 'bitbucket' } })).toMatch(/^spec\.pull_request\.provider: must be one of git, github, gitlab, none/);
    expect(verdict({ pullRequest: { provider: 'github' } })).toMatch(/^spec\.pull_request\.token_from_env: is required for the github provider/);
    expect(verdict({ pullRequest: { provider: 'github', tokenFromEnv: 'gh-token' } })).toMatch(/^spec\.pull_request\.token_from_env: must be upper-case/);
    expect(verdict({ pullRequest: { apiUrl: 'ftp://x' } })).toMatch(/^spec\.pull_request\.api_url: must be an http\(s\) URL/);
    expect(verdict({ pullRequest: { baseBranch: 'a..b' } })).toMatch(/^spec\.pull_request\.base_branch: is not a valid branch name/);
    expect(verdict({ pullRequest: { repository: 'just-a-name' } })).toMatch(/^spec\.pull_request\.repository: must be owner\/name/);
    expect(verdict({ pullRequest: { labels: ['ok', 'a,b'] } })).toMatch(/^spec\.pull_request\.labels\[1\]: must be a non-empty label without commas/);
    expect(verdict({ pullRequest: { reviewers: ['al ice'] } })).toMatch(/^spec\.pull_request\.reviewers\[0\]: must be a login or username/);
    expect(verdict({ testReports: ['reports/*.xml', '../elsewhere/*.xml'] })).toMatch(/^spec\.test_reports\[1\]: must be a repo-relative glob/);
    expect(verdict({ testReports: ['/etc/*.xml'] })).toMatch(/^spec\.test_reports\[0\]: must be a repo-relative glob/);
    expect(verdict({ testReports: ['**/TEST-*.xml'] })).toBe('accepted');
  });
});
