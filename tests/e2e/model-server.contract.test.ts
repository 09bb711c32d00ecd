/**
 * Contract test of the local model server (tests/support/model-server.ts): the official SDKs parse
 * what it sends. OpenAI Responses API and Chat Completions through `openai@7.55.0`, Anthropic Messages
 * API (anthropic-version 2023-06-01) through `@anthropic-ai/sdk@1.10.0`, each streaming and not:
 * a tool call with its arguments, the final text, the usage.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scripted, startModelServer, type ModelServer, type ModelStep } from '../support/model-server.js';

const steps: ModelStep[] = [
  { text: 'Reading it.', tools: [{ name: 'read_file', input: { path: 'greeting.txt', lines: [1, 2] } }] },
  { text: 'The file says hello.' },
];

let server: ModelServer;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  server = await startModelServer({ reply: scripted(steps), usage: (req) => ({ input: 50 + req.toolResults, output: 7 }) });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'test-key', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: 'test-key', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

const readFileTool = {
  name: 'read_file',
  description: 'Reads a file',
  parameters: { type: 'object', properties: { path: { type: 'string' }, lines: { type: 'array', items: { type: 'number' } } }, required: ['path'] },
};

describe('OpenAI Responses API', () => {
  const tools = [{ type: 'function' as const, strict: false, ...readFileTool }];

  it('non-streaming: tool call, then the final text after a function_call_output', async () => {
    const first = await openai.responses.create({ model: 'gpt-test', input: 'Read greeting.txt', tools });
    const call = first.output.find((o) => o.type === 'function_call');
    expect(call).toMatchObject({ type: 'function_call', name: 'read_file' });
    expect(JSON.parse((call as { arguments: string }).arguments)).toEqual({ path: 'greeting.txt', lines: [1, 2] });
    expect(first.output_text).toBe('Reading it.');
    expect(first.usage).toMatchObject({ input_tokens: 50, output_tokens: 7, total_tokens: 57 });

    const second = await openai.responses.create({
      model: 'gpt-test',
      tools,
      input: [
        { role: 'user', content: 'Read greeting.txt' },
        { type: 'function_call', call_id: (call as { call_id: string }).call_id, name: 'read_file', arguments: '{}' },
        { type: 'function_call_output', call_id: (call as { call_id: string }).call_id, output: 'hello' },
      ],
    });
    expect(second.output_text).toBe('The file says hello.');
    expect(second.usage?.input_tokens).toBe(51);
    const seen = server.requests.filter((r) => r.path === '/v1/responses');
    expect(seen.at(-1)).toMatchObject({ api: 'responses', toolResults: 1, toolNames: ['read_file'], stream: false, model: 'gpt-test', toolOutputs: ['hello'] });
  });

  it('streaming: responses.stream(...).finalResponse() and the delta events', async () => {
    const stream = openai.responses.stream({ model: 'gpt-test', input: 'Read greeting.txt', tools });
    const argDeltas: string[] = [];
    const textDeltas: string[] = [];
    stream.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.delta));
    stream.on('response.output_text.delta', (e) => textDeltas.push(e.delta));
    const final = await stream.finalResponse();
    const call = final.output.find((o) => o.type === 'function_call');
    expect(call).toMatchObject({ name: 'read_file', status: 'completed' });
    expect(JSON.parse((call as { arguments: string }).arguments)).toEqual({ path: 'greeting.txt', lines: [1, 2] });
    expect(argDeltas.join('')).toBe((call as { arguments: string }).arguments);
    expect(textDeltas.join('')).toBe('Reading it.');
    expect(final.usage).toMatchObject({ input_tokens: 50, output_tokens: 7 });

    const done = await openai.responses
      .stream({
        model: 'gpt-test',
        tools,
        input: [
          { type: 'function_call', call_id: 'call_1', name: 'read_file', arguments: '{}' },
          { type: 'function_call_output', call_id: 'call_1', output: 'hello' },
        ],
      })
      .finalResponse();
    expect(done.output_text).toBe('The file says hello.');
    expect(done.usage?.output_tokens).toBe(7);
    expect(server.requests.at(-1)).toMatchObject({ stream: true, toolResults: 1 });
  });

  it('a custom (freeform) tool is answered with a custom_tool_call', async () => {
    const custom = await startModelServer({ reply: () => ({ tools: [{ name: 'apply_patch', input: { input: '*** Begin Patch\n*** End Patch\n' } }] }) });
    try {
      const client = new OpenAI({ baseURL: `${custom.url}/v1`, apiKey: 'k', maxRetries: 0 });
      const final = await client.responses
        .stream({ model: 'gpt-test', input: 'patch', tools: [{ type: 'custom', name: 'apply_patch', description: 'patch' }] })
        .finalResponse();
      expect(final.output[0]).toMatchObject({ type: 'custom_tool_call', name: 'apply_patch', input: '*** Begin Patch\n*** End Patch\n' });
    } finally {
      await custom.close();
    }
  });
});

describe('OpenAI Chat Completions', () => {
  const tools = [{ type: 'function' as const, function: readFileTool }];

  it('non-streaming: tool_calls, then the final text after a tool message', async () => {
    const first = await openai.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'Read greeting.txt' }], tools });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('read_file');
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ path: 'greeting.txt', lines: [1, 2] });
    expect(first.usage).toMatchObject({ prompt_tokens: 50, completion_tokens: 7, total_tokens: 57 });

    const second = await openai.chat.completions.create({
      model: 'gpt-test',
      tools,
      messages: [{ role: 'user', content: 'Read greeting.txt' }, choice.message, { role: 'tool', tool_call_id: call.id, content: 'hello' }],
    });
    expect(second.choices[0]!.message.content).toBe('The file says hello.');
    expect(second.choices[0]!.finish_reason).toBe('stop');
    expect(server.requests.at(-1)).toMatchObject({ api: 'chat', path: '/v1/chat/completions', toolResults: 1, toolNames: ['read_file'] });
  });

  it('streaming with include_usage: tool_calls deltas, the usage chunk and [DONE]', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'Read greeting.txt' }],
      tools,
      stream: true,
      stream_options: { include_usage: true },
    });
    let args = '';
    let name = '';
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      text += choice.delta.content ?? '';
      for (const tc of choice.delta.tool_calls ?? []) {
        name += tc.function?.name ?? '';
        args += tc.function?.arguments ?? '';
      }
      finish = choice.finish_reason ?? finish;
    }
    expect(name).toBe('read_file');
    expect(JSON.parse(args)).toEqual({ path: 'greeting.txt', lines: [1, 2] });
    expect(text).toBe('Reading it.');
    expect(finish).toBe('tool_calls');
    expect(usage).toMatchObject({ prompt_tokens: 50, completion_tokens: 7 });
  });

  it('streaming helper: chat.completions.stream(...).finalChatCompletion()', async () => {
    const final = await openai.chat.completions
      .stream({
        model: 'gpt-test',
        tools,
        stream_options: { include_usage: true },
        messages: [
          { role: 'user', content: 'Read greeting.txt' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'read_file', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'hello' },
        ],
      })
      .finalChatCompletion();
    expect(final.choices[0]!.message.content).toBe('The file says hello.');
    expect(final.usage).toMatchObject({ prompt_tokens: 51, completion_tokens: 7 });

    const withTool = await openai.chat.completions.stream({ model: 'gpt-test', tools, messages: [{ role: 'user', content: 'go' }] }).finalChatCompletion();
    const call = withTool.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ path: 'greeting.txt', lines: [1, 2] });
  });
});

describe('Anthropic Messages API', () => {
  const tools = [{ name: 'read_file', description: 'Reads a file', input_schema: readFileTool.parameters as Anthropic.Tool.InputSchema }];

  it('non-streaming: tool_use, then the final text after a tool_result', async () => {
    const first = await anthropic.messages.create({
      model: 'claude-test',
      max_tokens: 1024,
      tools,
      messages: [{ role: 'user', content: 'Read greeting.txt' }],
    });
    expect(first.stop_reason).toBe('tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    expect(use).toMatchObject({ name: 'read_file', input: { path: 'greeting.txt', lines: [1, 2] } });
    expect(first.content[0]).toMatchObject({ type: 'text', text: 'Reading it.' });
    expect(first.usage).toMatchObject({ input_tokens: 50, output_tokens: 7 });

    const second = await anthropic.messages.create({
      model: 'claude-test',
      max_tokens: 1024,
      tools,
      messages: [
        { role: 'user', content: 'Read greeting.txt' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: (use as { id: string }).id, content: 'hello' }] },
      ],
    });
    expect(second.stop_reason).toBe('end_turn');
    expect(second.content).toEqual([{ type: 'text', text: 'The file says hello.' }]);
    expect(server.requests.at(-1)).toMatchObject({ api: 'messages', path: '/v1/messages', toolResults: 1, toolNames: ['read_file'], toolOutputs: ['hello'] });
  });

  it('streaming: messages.stream(...).finalMessage() with input_json_delta and usage', async () => {
    const stream = anthropic.messages.stream({ model: 'claude-test', max_tokens: 1024, tools, messages: [{ role: 'user', content: 'Read greeting.txt' }] });
    let text = '';
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    expect(text).toBe('Reading it.');
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'read_file', input: { path: 'greeting.txt', lines: [1, 2] } });
    expect(final.usage).toMatchObject({ input_tokens: 50, output_tokens: 7 });

    const done = await anthropic.messages
      .stream({
        model: 'claude-test',
        max_tokens: 1024,
        tools,
        messages: [
          { role: 'user', content: 'Read greeting.txt' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'read_file', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'hello' }] }] },
        ],
      })
      .finalMessage();
    expect(done.stop_reason).toBe('end_turn');
    expect(done.content).toEqual([{ type: 'text', text: 'The file says hello.' }]);
    expect(done.usage.input_tokens).toBe(51);
  });

  it('side endpoints: count_tokens and the models list, recorded', async () => {
    const count = await anthropic.messages.countTokens({ model: 'claude-test', messages: [{ role: 'user', content: 'hi' }] });
    expect(count.input_tokens).toBeGreaterThan(0);
    const models = await anthropic.models.list();
    expect(models.data.map((m) => m.id)).toContain('claude-test');
    const openaiModels = await openai.models.list();
    expect(openaiModels.data.map((m) => m.id)).toContain('gpt-test');
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(['POST /v1/messages/count_tokens', 'GET /v1/models']));
  });

  it('an unknown path is a 404 in the provider error shape', async () => {
    await expect(anthropic.post('/v1/nothing', { body: {} })).rejects.toMatchObject({
      status: 404,
      error: { type: 'error', error: { type: 'not_found_error' } },
    });
    await expect(openai.post('/nothing', { body: {} })).rejects.toMatchObject({ status: 404, error: { code: 'not_found' } });
  });
});
