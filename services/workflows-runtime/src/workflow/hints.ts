/**
 * What to fix when a command phase fails for a reason of the sandbox rather than of the code: a
 * command the sandbox does not have, or a network call in a phase that has no network. Pure
 * functions of the phase's exit code, output tail and guardrails; workflow code (deterministic: no
 * I/O, imports only types).
 */
import type { CommandPhase, EgressDestinationResult, GuardrailSettings } from '@ameide/temporal';

/** What a hint is drawn from: the failed phase, its exit code and output tail, the run's guardrails. */
export interface CommandFailure {
  phase: CommandPhase;
  exitCode: number;
  outputTail: string;
  guardrails: Pick<GuardrailSettings, 'sandbox' | 'network' | 'readOnlyPaths' | 'egressHosts'>;
  /** Where the phase went through the egress proxy (online phases). */
  egress?: EgressDestinationResult[];
  /** The model endpoint of an agent phase in network mode `model`. */
  modelOnly?: { host: string; port: number };
}

/**
 * What a command sees in the sandbox (guardrails/sandbox.ts mounts these; a unit test keeps the two
 * in step): the system's directories read-only, and the checkout.
 */
export const SANDBOX_VIEW = {
  usr: '/usr',
  /** Symlinks into /usr. */
  usrAliases: ['/bin', '/sbin', '/lib'],
  system: ['/usr', '/opt'],
  checkout: '/sandbox/workspace',
} as const;

/** The shell's exit code for a command it could not find. */
const NOT_FOUND_EXIT = 127;

/**
 * "not found" lines of shells and env, with the command's name as the first group:
 * `/bin/sh: 1: foo: not found` (dash), `bash: line 1: foo: command not found`, `sh: foo: not found`
 * (busybox), `zsh:1: command not found: foo`, `/usr/bin/env: 'node': No such file or directory`.
 */
const NOT_FOUND_LINES = [
  /^[^\n]*?:\s(?:\d+:\s|line \d+:\s)?(?:exec:\s)?([^\s:][^:\n]*?): (?:command )?not found\s*$/,
  /^[^\n]*command not found: (\S+)\s*$/,
  /^(?:\S*\/)?env: [‘'"]?([^’'"\n]+?)[’'"]?: No such file or directory\s*$/,
];

/** The name of the command the shell could not find, from the last "not found" line of the output. */
export function missingCommand(outputTail: string): string | undefined {
  const lines = outputTail.split(/\r?\n/).reverse();
  for (const line of lines) {
    for (const re of NOT_FOUND_LINES) {
      const m = re.exec(line);
      if (m) return m[1]!.trim();
    }
  }
  return undefined;
}

const quoteList = (items: readonly string[]) => items.join(', ');

/** The hint for exit code 127 with the shell's "not found" line in the output, else undefined. */
export function commandNotFoundHint(f: CommandFailure): string | undefined {
  if (f.exitCode !== NOT_FOUND_EXIT) return undefined;
  const name = missingCommand(f.outputTail);
  if (name === undefined) return undefined;
  if (f.guardrails.sandbox === 'none') {
    return `${name}: command not found on the worker's PATH (sandbox: none); install it on the worker or call it by its full path`;
  }
  const extra = f.guardrails.readOnlyPaths.length ? quoteList(f.guardrails.readOnlyPaths) : 'none';
  return (
    `${name}: command not found in the sandbox. A sandboxed command sees only the system's ${SANDBOX_VIEW.usr} ` +
    `(also as ${quoteList(SANDBOX_VIEW.usrAliases)}) and ${quoteList(SANDBOX_VIEW.system.filter((d) => d !== SANDBOX_VIEW.usr))}, read-only, the checkout at ${SANDBOX_VIEW.checkout}, ` +
    `and the definition's guardrails.readOnlyPaths (${extra}), whose bin/ directories come first on PATH. ` +
    `To use a tool installed elsewhere on the worker, add its directory to guardrails.readOnlyPaths in the definition ` +
    `(it must lie under one of the operator's AMEIDE_SANDBOX_READ_ONLY_PATHS), or install it into the checkout ` +
    `with the install command and call it by its path`
  );
}

const LOOPBACK = /^(?:127\.\d+\.\d+\.\d+|::1|\[::1\]|0\.0\.0\.0|localhost)$/i;

/**
 * Network failures as tools print them, with the host as the first group where the line names it.
 * Order matters: the first that matches names the failure.
 */
const NETWORK_FAILURES: Array<{ re: RegExp; host?: (m: RegExpExecArray) => string | undefined }> = [
  // Node (npm, pnpm, yarn, fetch, https.get): getaddrinfo ENOTFOUND registry.npmjs.org
  { re: /getaddrinfo (?:ENOTFOUND|EAI_AGAIN) ([^\s,;)'"]+)/, host: (m) => m[1] },
  // curl, git: Could not resolve host: github.com
  { re: /Could not resolve host:? '?([^\s,;)'"]+)/, host: (m) => m[1] },
  // Go: dial tcp: lookup proxy.golang.org on 127.0.0.1:53: …
  { re: /dial tcp: lookup ([^\s:]+)/, host: (m) => m[1] },
  // Java: java.net.UnknownHostException: repo.maven.apache.org
  { re: /UnknownHostException: ([^\s:]+)/, host: (m) => m[1] },
  // wget: unable to resolve host address 'example.com'
  { re: /unable to resolve host address [‘'"]?([^’'"\s]+)/, host: (m) => m[1] },
  // connect ECONNREFUSED 203.0.113.7:443, but not a server of the sandbox's own loopback
  { re: /ECONNREFUSED ((?:\d+\.){3}\d+|\[[0-9a-f:]+\]|[0-9a-f]*:[0-9a-f:]+):\d+/i, host: (m) => (LOOPBACK.test(m[1]!) ? undefined : m[1]) },
  // npm: npm error code ENOTFOUND / errno EAI_AGAIN; Python: Temporary failure in name resolution …
  { re: /\b(?:ENOTFOUND|EAI_AGAIN|ENETUNREACH)\b/ },
  { re: /Temporary failure in name resolution|Name or service not known|nodename nor servname provided|No address associated with hostname/ },
  { re: /Network is unreachable/ },
];

/** The network failure the output shows, as a short quote and the host it names (if any). */
export function networkFailure(outputTail: string): { quote: string; host?: string } | undefined {
  for (const { re, host } of NETWORK_FAILURES) {
    const m = re.exec(outputTail);
    if (!m) continue;
    const h = host ? host(m) : undefined;
    // A pattern that names a host but found only loopback is the sandbox's own server, not the network.
    if (host && h === undefined) continue;
    return { quote: m[0].trim(), host: h };
  }
  return undefined;
}

/** The hint for a failed online phase the egress proxy refused a destination of, else undefined. */
export function egressRefusedHint(f: CommandFailure): string | undefined {
  // Refused, not failed: a destination the proxy admitted but could not reach (down, no such name) is not a policy matter.
  const refused = (f.egress ?? []).filter((e) => !e.allowed && e.reason !== undefined && !e.reason.startsWith('failed: '));
  if (f.exitCode === 0 || !refused.length) return undefined;
  const shown = refused
    .slice(0, 3)
    .map((e) => `${e.destination} (${e.reason})`)
    .join(', ');
  const reaches = f.modelOnly
    ? `the agent phase is in network mode "model": it reaches only its model endpoint ${f.modelOnly.host}:${f.modelOnly.port}. ` +
      `To let it reach more, set guardrails.network.agent: true (the egress allowlist and the endpoint)`
    : `the ${f.phase} phase reaches only ${f.guardrails.egressHosts.length ? `its guardrails.egressHosts (${quoteList(f.guardrails.egressHosts)})` : "the hosts of the operator's list"} on ports 80 and 443. ` +
      `Add the host to guardrails.egressHosts (within the operator's AMEIDE_EGRESS_ALLOWED_HOSTS)`;
  return `the egress proxy refused ${shown}: ${reaches}`;
}

/** The hint for a failed offline phase whose output shows a network failure, else undefined. */
export function offlineNetworkHint(f: CommandFailure): string | undefined {
  if (f.exitCode === 0 || f.guardrails.sandbox === 'none' || f.guardrails.network[f.phase] || f.modelOnly) return undefined;
  const failure = networkFailure(f.outputTail);
  if (!failure) return undefined;
  const target = failure.host ?? 'the network';
  const install = f.phase === 'install' ? '' : ', or fetch what it needs in the install phase (online by default)';
  const hosts = f.guardrails.egressHosts.length
    ? `only the hosts of its guardrails.egressHosts (${quoteList(f.guardrails.egressHosts)}): add ${failure.host ?? 'the host'} there if it is missing`
    : `the hosts of the operator's list, or only those you name in guardrails.egressHosts`;
  return (
    `the output shows a network failure (${failure.quote}), but the ${f.phase} phase has no network (it is offline in this definition). ` +
    `To let it reach ${target}, set guardrails.network.${f.phase}: true in the definition${install}. ` +
    `An online phase reaches, through the worker's egress proxy, ${hosts} (within the operator's AMEIDE_EGRESS_ALLOWED_HOSTS)`
  );
}

/** What to fix for a failed command phase, when the failure is one the sandbox explains; else undefined. */
export function failureHint(f: CommandFailure): string | undefined {
  return commandNotFoundHint(f) ?? egressRefusedHint(f) ?? offlineNetworkHint(f);
}
