import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSpansFile, AgentSpansError, exportAgentSpans, langchainAdapter, langchainBundle, MAX_SPANS_FILE_BYTES } from '../../../src/agents/langchain.js';
import { AgentUnavailableError, type AgentLaunchContext } from '../../../src/agents/types.js';

const repo = join(import.meta.dirname, '../../../../..');
const ctx: AgentLaunchContext = {
  promptFile: '/sandbox/prompt.md',
  worktree: '/sandbox/workspace',
  home: '/sandbox/home',
  tmp: '/sandbox/tmp',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
};

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'langchain-adapter-'));
  // launch() needs the bundle `make deps` builds.
  execFileSync(process.execPath, [join(repo, 'packages/agent/build.mjs')], { stdio: 'inherit' });
}, 120_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('langchain launch', () => {
  it('runs the bundled runtime with Node, with every setting as a flag and the instructions as a file under TMPDIR', () => {
    const launch = langchainAdapter.launch(
      {
        kind: 'langchain',
        model: 'gpt-5',
        endpoint: 'https://api.example.com/v1',
        api: 'responses',
        apiKeyEnv: 'MODEL_KEY',
        maxTurns: 7,
        instructions: 'Be brief.',
      },
      ctx,
    );
    const bundle = realpathSync(join(repo, 'packages/agent/dist/agent.mjs'));
    expect(launch.argv).toEqual([
      realpathSync(process.execPath),
      bundle,
      '--prompt-file',
      '/sandbox/prompt.md',
      '--model',
      'gpt-5',
      '--endpoint',
      'https://api.example.com/v1',
      '--api',
      'responses',
      '--max-turns',
      '7',
      '--spans-file',
      '/sandbox/tmp/agent-spans.json',
      '--api-key-env',
      'MODEL_KEY',
      '--instructions-file',
      '/sandbox/tmp/agent-instructions.md',
      '--traceparent',
      ctx.traceparent,
    ]);
    expect(launch.files).toEqual([{ path: '/sandbox/tmp/agent-instructions.md', content: 'Be brief.' }]);
    expect(launch.readOnly[0]).toBe(dirname(bundle));
    // Node itself is visible in the sandbox: under /usr, or mounted.
    const node = launch.argv[0]!;
    expect(node.startsWith('/usr/') || launch.readOnly.includes(dirname(node))).toBe(true);
    expect(launch.stdin).toBeUndefined();
    expect(agentSpansFile(ctx)).toBe('/sandbox/tmp/agent-spans.json');
  });

  it('defaults to Chat Completions, and passes no key, instructions or traceparent it does not have', () => {
    const { argv, files } = langchainAdapter.launch(
      { kind: 'langchain', model: 'm', endpoint: 'http://model.internal/v1', maxTurns: 3 },
      { ...ctx, traceparent: undefined },
    );
    expect(argv.slice(argv.indexOf('--api'), argv.indexOf('--api') + 2)).toEqual(['--api', 'chat']);
    expect(argv).not.toContain('--api-key-env');
    expect(argv).not.toContain('--instructions-file');
    expect(argv).not.toContain('--traceparent');
    expect(files).toEqual([]);
  });

  it('says to run make deps when the runtime is not built', () => {
    expect(() => langchainBundle(join(scratch, 'missing/agent.mjs'))).toThrow(AgentUnavailableError);
    expect(() => langchainBundle(join(scratch, 'missing/agent.mjs'))).toThrow(/not built.*make deps/);
  });
});

describe('langchain parseLine', () => {
  const parse = (line: string) => langchainAdapter.parseLine(line);

  it('reads each event the runtime writes', () => {
    const events = [
      { type: 'turn' },
      { type: 'usage', model: 'gpt-5', inputTokens: 100, outputTokens: 20 },
      { type: 'message', role: 'assistant', text: 'Reading.' },
      { type: 'tool_call', name: 'read_file', input: '{"path":"a.txt"}', id: 'call_1' },
      { type: 'tool_result', output: 'hello', id: 'call_1' },
      { type: 'tool_result', output: 'Error: refused', id: 'call_2', isError: true },
      { type: 'final', text: 'Done.' },
      { type: 'error', message: 'stopped after 2 model calls (maxTurns 2)' },
    ];
    for (const e of events) expect(parse(JSON.stringify(e))).toEqual([e]);
  });

  it('ignores anything that is not one of its events (the line is untrusted)', () => {
    for (const line of [
      '',
      'agent: starting',
      '{',
      '[]',
      'null',
      '{"type":"turn"} trailing',
      '{"type":"unknown"}',
      '{"type":"usage","inputTokens":-1,"outputTokens":2}',
      '{"type":"usage","inputTokens":1.5,"outputTokens":2}',
      '{"type":"usage","inputTokens":"1","outputTokens":2}',
      '{"type":"message","role":"system","text":"x"}',
      '{"type":"tool_call","name":"","input":"{}"}',
      '{"type":"tool_call","name":"x","input":{}}',
      '{"type":"final"}',
      '{"type":"error","message":42}',
    ]) {
      expect(parse(line), line).toEqual([]);
    }
  });

  it('keeps only the fields of an event', () => {
    expect(parse('{"type":"final","text":"ok","__proto__":{"x":1},"extra":true}')).toEqual([{ type: 'final', text: 'ok' }]);
  });
});

describe('exportAgentSpans', () => {
  const request = {
    resourceSpans: [
      {
        resource: { attributes: [] },
        scopeSpans: [{ scope: { name: 'x' }, spans: [1, 2, 3].map((n) => ({ traceId: 'a'.repeat(32), spanId: String(n).repeat(16), name: `s${n}` })) }],
      },
    ],
  };

  async function collector(status = 200) {
    const bodies: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push({ path: req.url, type: req.headers['content-type'], json: JSON.parse(body) });
        res.writeHead(status).end(status === 200 ? '{}' : 'no');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
      bodies,
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
  }

  it('posts the file to the OTLP/HTTP JSON endpoint and counts its spans', async () => {
    const file = join(scratch, 'spans.json');
    writeFileSync(file, JSON.stringify(request));
    const c = await collector();
    try {
      expect(await exportAgentSpans(file, c.url)).toBe(3);
      expect(c.bodies).toEqual([{ path: '/v1/traces', type: 'application/json', json: request }]);
    } finally {
      await c.close();
    }
  });

  it('refuses a file that is missing, too large, a symlink, not JSON or not an OTLP trace export, and a collector that refuses', async () => {
    const c = await collector(500);
    try {
      const write = (name: string, text: string) => {
        const f = join(scratch, name);
        writeFileSync(f, text);
        return f;
      };
      const link = join(scratch, 'link.json');
      symlinkSync(write('target.json', JSON.stringify(request)), link);
      const cases: Array<[string, RegExp]> = [
        [join(scratch, 'none.json'), /wrote no spans file/],
        [write('big.json', ' '.repeat(MAX_SPANS_FILE_BYTES + 1)), /more than 4194304/],
        [link, /cannot open.*ELOOP/],
        [scratch, /not a regular file/],
        [write('text.json', 'spans'), /not JSON/],
        [write('array.json', '[]'), /not an OTLP\/JSON trace export/],
        [write('nospans.json', '{"resourceSpans":{}}'), /not an OTLP\/JSON trace export/],
        [write('badspan.json', '{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":1}]}]}]}'), /not an OTLP\/JSON trace export/],
        [write('refused.json', JSON.stringify(request)), /refused the agent's spans: HTTP 500: no/],
      ];
      for (const [file, error] of cases) {
        const err = await exportAgentSpans(file, c.url).catch((e: unknown) => e);
        expect(err, file).toBeInstanceOf(AgentSpansError);
        expect((err as Error).message, file).toMatch(error);
      }
      expect(c.bodies).toHaveLength(1);
    } finally {
      await c.close();
    }
  });
});
