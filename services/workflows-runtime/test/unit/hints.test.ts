import { describe, expect, it } from 'vitest';
import { DEFAULT_GUARDRAILS } from '@ameide/temporal';
import { SANDBOX_MOUNTS, sandboxArgv } from '../../src/guardrails/sandbox.js';
import {
  commandNotFoundHint,
  egressRefusedHint,
  failureHint,
  missingCommand,
  networkFailure,
  offlineNetworkHint,
  SANDBOX_VIEW,
  type CommandFailure,
} from '../../src/workflow/hints.js';

const failure = (o: Partial<Omit<CommandFailure, 'guardrails'>> & { guardrails?: Partial<CommandFailure['guardrails']> } = {}): CommandFailure => ({
  phase: 'agent',
  exitCode: 1,
  outputTail: '',
  ...o,
  guardrails: { ...DEFAULT_GUARDRAILS, ...o.guardrails },
});

describe('a command the sandbox does not have', () => {
  it.each([
    ['/bin/sh: 1: nonexistent-tool: not found', 'nonexistent-tool'],
    ['bash: line 1: codex: command not found', 'codex'],
    ['bash: codex: command not found', 'codex'],
    ['sh: jest: not found', 'jest'],
    ['sh: 1: exec: claude: not found', 'claude'],
    ['zsh:1: command not found: aider', 'aider'],
    ["/usr/bin/env: 'python3': No such file or directory", 'python3'],
    ['/usr/bin/env: ‘node’: No such file or directory', 'node'],
    ['/bin/sh: 1: ./scripts/run.sh: not found', './scripts/run.sh'],
  ])('finds the command in %j', (line, name) => {
    expect(missingCommand(`some output\n${line}\n`)).toBe(name);
  });

  it('says the command was not found, what the sandbox sees and how to add a directory', () => {
    const hint = commandNotFoundHint(
      failure({ exitCode: 127, outputTail: 'starting\n/bin/sh: 1: nonexistent-tool: not found\n', guardrails: { readOnlyPaths: ['/opt/agents'] } }),
    )!;
    expect(hint).toMatch(/^nonexistent-tool: command not found in the sandbox\./);
    expect(hint).toContain("the system's /usr (also as /bin, /sbin, /lib) and /opt, read-only");
    expect(hint).toContain(`the checkout at ${SANDBOX_MOUNTS.worktree}`);
    expect(hint).toContain("the definition's guardrails.readOnlyPaths (/opt/agents)");
    expect(hint).toContain('add its directory to guardrails.readOnlyPaths in the definition');
    expect(hint).toContain('AMEIDE_SANDBOX_READ_ONLY_PATHS');
    expect(commandNotFoundHint(failure({ exitCode: 127, outputTail: 'sh: x: not found' }))).toContain('guardrails.readOnlyPaths (none)');
  });

  it('needs both exit code 127 and the shell saying so', () => {
    expect(commandNotFoundHint(failure({ exitCode: 1, outputTail: '/bin/sh: 1: foo: not found' }))).toBeUndefined();
    expect(commandNotFoundHint(failure({ exitCode: 127, outputTail: 'exit 127 by hand' }))).toBeUndefined();
  });

  it("points at the worker's PATH without a sandbox", () => {
    expect(commandNotFoundHint(failure({ exitCode: 127, outputTail: 'sh: foo: not found', guardrails: { sandbox: 'none' } }))).toBe(
      "foo: command not found on the worker's PATH (sandbox: none); install it on the worker or call it by its full path",
    );
  });

  it('names the directories the sandbox really mounts', () => {
    const { args } = sandboxArgv(
      {
        kind: 'bubblewrap',
        bwrap: 'bwrap',
        uid: 1,
        gid: 1,
        cwd: SANDBOX_MOUNTS.worktree,
        writable: [],
        readOnly: [],
        maxProcesses: 1,
        maxFileBytes: 1,
        etcDir: '/e',
      },
      'true',
    );
    const argv = args.join(' ');
    for (const dir of SANDBOX_VIEW.system) expect(argv).toContain(`--ro-bind-try ${dir} ${dir}`);
    for (const alias of SANDBOX_VIEW.usrAliases) expect(argv).toContain(`--symlink usr${alias} ${alias}`);
    expect(SANDBOX_VIEW.checkout).toBe(SANDBOX_MOUNTS.worktree);
  });
});

describe('the network in an offline phase', () => {
  it.each([
    ['Error: getaddrinfo ENOTFOUND registry.npmjs.org', 'registry.npmjs.org'],
    ['Error: getaddrinfo EAI_AGAIN registry.npmjs.org', 'registry.npmjs.org'],
    ['request to https://registry.npmjs.org/left-pad failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org', 'registry.npmjs.org'],
    ['curl: (6) Could not resolve host: example.com', 'example.com'],
    ["fatal: unable to access 'https://github.com/a/b.git/': Could not resolve host: github.com", 'github.com'],
    ['go: downloading x: Get "https://proxy.golang.org/x": dial tcp: lookup proxy.golang.org on 127.0.0.1:53: connection refused', 'proxy.golang.org'],
    ['java.net.UnknownHostException: repo.maven.apache.org', 'repo.maven.apache.org'],
    ["wget: unable to resolve host address 'example.com'", 'example.com'],
    ['Error: connect ECONNREFUSED 203.0.113.7:443', '203.0.113.7'],
    ['npm error code ENOTFOUND', undefined],
    ['socket.gaierror: [Errno -3] Temporary failure in name resolution', undefined],
    ['connect: Network is unreachable', undefined],
  ])('recognises %j', (line, host) => {
    expect(networkFailure(`output\n${line}\nmore`)).toMatchObject({ host });
  });

  it('does not take a refused connection to the sandbox’s own loopback, or an ordinary failure, for the network', () => {
    for (const tail of [
      'Error: connect ECONNREFUSED 127.0.0.1:5432',
      'connect ECONNREFUSED [::1]:8080',
      'AssertionError: expected 41 to equal 42',
      '1 failing',
    ]) {
      expect(networkFailure(tail)).toBeUndefined();
    }
  });

  it('says the phase is offline and how to put it online, with the hosts', () => {
    const tail =
      "Error: getaddrinfo EAI_AGAIN registry.npmjs.org\n    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:120:26) {\n  code: 'EAI_AGAIN'\n}";
    const hint = offlineNetworkHint(failure({ phase: 'test', outputTail: tail }))!;
    expect(hint).toMatch(/^the output shows a network failure \(getaddrinfo EAI_AGAIN registry\.npmjs\.org\), but the test phase has no network/);
    expect(hint).toContain('set guardrails.network.test: true in the definition');
    expect(hint).toContain('fetch what it needs in the install phase');
    expect(hint).toContain('guardrails.egressHosts');
    expect(hint).toContain('AMEIDE_EGRESS_ALLOWED_HOSTS');
    const listed = offlineNetworkHint(failure({ phase: 'agent', outputTail: tail, guardrails: { egressHosts: ['pypi.org'] } }))!;
    expect(listed).toContain('only the hosts of its guardrails.egressHosts (pypi.org): add registry.npmjs.org there if it is missing');
  });

  it('stays silent when the phase is online, succeeded, or runs without a sandbox', () => {
    const tail = 'getaddrinfo ENOTFOUND example.com';
    expect(offlineNetworkHint(failure({ phase: 'install', outputTail: tail }))).toBeUndefined();
    expect(
      offlineNetworkHint(failure({ phase: 'test', outputTail: tail, guardrails: { network: { install: true, agent: false, test: true } } })),
    ).toBeUndefined();
    expect(offlineNetworkHint(failure({ exitCode: 0, outputTail: tail }))).toBeUndefined();
    expect(offlineNetworkHint(failure({ outputTail: tail, guardrails: { sandbox: 'none' } }))).toBeUndefined();
    expect(
      offlineNetworkHint(failure({ phase: 'install', outputTail: tail, guardrails: { network: { install: false, agent: false, test: false } } })),
    ).not.toContain('install phase (online by default)');
  });
});

it('prefers the missing command to the network', () => {
  const hint = failureHint(failure({ exitCode: 127, outputTail: 'getaddrinfo ENOTFOUND x.org\n/bin/sh: 1: curl: not found' }));
  expect(hint).toMatch(/^curl: command not found in the sandbox/);
  expect(failureHint(failure({ exitCode: 2, outputTail: 'plain failure' }))).toBeUndefined();
});

describe('a destination the egress proxy refused', () => {
  const refused = { phase: 'agent', destination: 'example.org:443', allowed: false, count: 2, reason: 'not in the allowlist' };
  it('names the destination and what the phase may reach', () => {
    const hint = egressRefusedHint(failure({ phase: 'install', guardrails: { network: { install: true, agent: false, test: false } }, egress: [refused] }))!;
    expect(hint).toMatch(
      /^the egress proxy refused example\.org:443 \(not in the allowlist\): the install phase reaches only the hosts of the operator's list/,
    );
    expect(hint).toContain('Add the host to guardrails.egressHosts');
    const model = egressRefusedHint(failure({ egress: [refused], modelOnly: { host: 'api.openai.com', port: 443 } }))!;
    expect(model).toMatch(/the agent phase is in network mode "model": it reaches only its model endpoint api\.openai\.com:443/);
    // A refused destination explains a failure before an offline-network guess does.
    expect(failureHint(failure({ egress: [refused], modelOnly: { host: 'api.openai.com', port: 443 }, outputTail: 'getaddrinfo ENOTFOUND example.org' }))).toBe(
      model,
    );
  });

  it('says nothing for a success, for allowed destinations, or for an upstream that failed', () => {
    expect(egressRefusedHint(failure({ exitCode: 0, egress: [refused] }))).toBeUndefined();
    expect(egressRefusedHint(failure({ egress: [{ ...refused, allowed: true, reason: undefined }] }))).toBeUndefined();
    expect(egressRefusedHint(failure({ egress: [{ ...refused, reason: 'failed: connect failed (ECONNREFUSED)' }] }))).toBeUndefined();
  });
});
