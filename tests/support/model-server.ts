/**
 * A local, scripted model server: the one test double allowed, standing in for the hosted LLM APIs
 * (which cannot be reached from the test machines). Tests that use it are contract tests.
 *
 * Wire formats it follows (as documented by the providers and as the official SDKs parse them;
 * tests/e2e/model-server.contract.test.ts checks it with `openai@7.55.0` and `@anthropic-ai/sdk@1.10.0`).
 * API versions: OpenAI's v1 REST API (`/v1`, versioned by path only; the event sequence of the Responses
 * API streaming reference), Anthropic's Messages API at `anthropic-version: 2023-06-01`.
 * - OpenAI Responses API, `POST /v1/responses`: a Response object, or with `stream: true` the SSE
 *   sequence response.created, response.in_progress, then per output item response.output_item.added,
 *   (response.content_part.added, response.output_text.delta, response.output_text.done,
 *   response.content_part.done | response.function_call_arguments.delta, response.function_call_arguments.done
 *   | response.custom_tool_call_input.delta, response.custom_tool_call_input.done), response.output_item.done,
 *   and response.completed with usage; every event carries `sequence_number`.
 *   A tool the request declares with `type: "custom"` (freeform, e.g. Codex's `apply_patch`) is answered
 *   with a `custom_tool_call` item whose `input` is the step's `input.input` string.
 * - OpenAI Chat Completions, `POST /v1/chat/completions`: a chat.completion, or chat.completion.chunk
 *   SSE chunks with `tool_calls` deltas, the usage chunk (`choices: []`) when
 *   `stream_options.include_usage` is set, and `data: [DONE]`.
 * - Anthropic Messages API (anthropic-version 2023-06-01), `POST /v1/messages`: a Message, or the SSE
 *   events message_start, content_block_start / content_block_delta (text_delta, input_json_delta) /
 *   content_block_stop, message_delta (stop_reason tool_use | end_turn, usage), message_stop.
 * - Side endpoints: `GET /v1/models` (OpenAI list shape, or Anthropic's when the request carries
 *   `anthropic-version`), `GET /v1/models/{id}`, `POST /v1/messages/count_tokens`.
 * Paths are matched with or without the `/v1` prefix; the query string is ignored (kept in `query`).
 * Anything else: 404 with a JSON error in the provider's error shape. Every request is recorded.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { ModelApi } from '../../services/workflows-runtime/src/agents/types.js';

/** One reply of the model: a tool call (or several), or a final text. */
export type ModelStep = { tools: Array<{ name: string; input: Record<string, unknown> }>; text?: string } | { text: string };

export interface ModelRequest {
  api: ModelApi;
  path: string;
  model: string;
  stream: boolean;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  /** tool results already in the conversation */
  toolResults: number;
  /** names of the tools the client offered */
  toolNames: string[];
  /** HTTP method. */
  method: string;
  /** The query string of the request (without `?`), empty when none. */
  query: string;
  /** The tool results' texts, in conversation order (what the tools returned). */
  toolOutputs: string[];
}

export interface ModelServerOptions {
  /** Picks the reply for a request. */
  reply: (req: ModelRequest) => ModelStep;
  /** Token usage reported for each reply (default input 100, output 20). */
  usage?: (req: ModelRequest) => { input: number; output: number };
  host?: string; // default 127.0.0.1
}

export interface ModelServer {
  /** http://host:port */
  url: string;
  port: number;
  /** every request, including ones answered with a default (models list, count_tokens, …) */
  requests: ModelRequest[];
  close(): Promise<void>;
}

/** The usual script: the reply for a request is steps[number of tool results in it] (the last step repeats). */
export function scripted(steps: ModelStep[]): (req: ModelRequest) => ModelStep {
  if (steps.length === 0) throw new Error('scripted: no steps');
  return (req) => steps[Math.min(req.toolResults, steps.length - 1)]!;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const now = () => Math.floor(Date.now() / 1000);

function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((p) => (isObj(p) && typeof p['text'] === 'string' ? p['text'] : typeof p === 'string' ? p : '')).join('');
  if (isObj(v) && typeof v['text'] === 'string') return v['text'];
  return v === undefined || v === null ? '' : JSON.stringify(v);
}

/** Tool results and offered tool names, per wire format. */
function inspect(api: ModelApi, body: Json): { toolResults: string[]; toolNames: string[] } {
  const toolResults: string[] = [];
  const toolNames: string[] = [];
  const tools = Array.isArray(body['tools']) ? body['tools'] : [];
  for (const t of tools) {
    if (!isObj(t)) continue;
    if (isObj(t['function']) && typeof t['function']['name'] === 'string') toolNames.push(t['function']['name']);
    else if (typeof t['name'] === 'string') toolNames.push(t['name']);
    else if (typeof t['type'] === 'string') toolNames.push(t['type']);
  }
  if (api === 'responses') {
    const input = Array.isArray(body['input']) ? body['input'] : [];
    for (const item of input) {
      if (
        isObj(item) &&
        (item['type'] === 'function_call_output' || item['type'] === 'custom_tool_call_output' || item['type'] === 'local_shell_call_output')
      ) {
        toolResults.push(textOf(item['output']));
      }
    }
  } else if (api === 'chat') {
    const messages = Array.isArray(body['messages']) ? body['messages'] : [];
    for (const m of messages) if (isObj(m) && m['role'] === 'tool') toolResults.push(textOf(m['content']));
  } else {
    const messages = Array.isArray(body['messages']) ? body['messages'] : [];
    for (const m of messages) {
      if (!isObj(m) || !Array.isArray(m['content'])) continue;
      for (const block of m['content']) if (isObj(block) && block['type'] === 'tool_result') toolResults.push(textOf(block['content']));
    }
  }
  return { toolResults, toolNames };
}

function decode(raw: Buffer, encoding: string | undefined): Buffer {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case 'gzip':
      return gunzipSync(raw);
    case 'deflate':
      return inflateSync(raw);
    case 'br':
      return brotliDecompressSync(raw);
    default:
      return raw;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function openSse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
}

function isAnthropic(req: IncomingMessage, path: string): boolean {
  return req.headers['anthropic-version'] !== undefined || /(^|\/)messages(\/|$)/.test(path);
}

function notFound(res: ServerResponse, anthropic: boolean, message: string): void {
  if (anthropic) sendJson(res, 404, { type: 'error', error: { type: 'not_found_error', message } });
  else sendJson(res, 404, { error: { message, type: 'invalid_request_error', param: null, code: 'not_found' } });
}

function badRequest(res: ServerResponse, anthropic: boolean, message: string): void {
  if (anthropic) sendJson(res, 400, { type: 'error', error: { type: 'invalid_request_error', message } });
  else sendJson(res, 400, { error: { message, type: 'invalid_request_error', param: null, code: null } });
}

const toolsOf = (step: ModelStep) => ('tools' in step ? step.tools : []);

export function startModelServer(options: ModelServerOptions): Promise<ModelServer> {
  const host = options.host ?? '127.0.0.1';
  const requests: ModelRequest[] = [];
  let seq = 0;
  const id = (prefix: string) => `${prefix}_${(++seq).toString().padStart(6, '0')}${Math.random().toString(16).slice(2, 10)}`;
  const usageFor = (req: ModelRequest) => options.usage?.(req) ?? { input: 100, output: 20 };

  // ---- OpenAI Responses API --------------------------------------------------------------------
  function responsesOutput(req: ModelRequest, step: ModelStep): Json[] {
    const body = req.body as Json;
    const declared = new Map<string, string>();
    for (const t of Array.isArray(body['tools']) ? body['tools'] : []) {
      if (isObj(t) && typeof t['name'] === 'string') declared.set(t['name'], typeof t['type'] === 'string' ? t['type'] : 'function');
    }
    const out: Json[] = [];
    if (step.text !== undefined && step.text !== '') {
      out.push({
        id: id('msg'),
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: step.text, annotations: [], logprobs: [] }],
      });
    }
    for (const tool of toolsOf(step)) {
      if (declared.get(tool.name) === 'custom') {
        const input = typeof tool.input['input'] === 'string' ? tool.input['input'] : JSON.stringify(tool.input);
        out.push({ id: id('ctc'), type: 'custom_tool_call', status: 'completed', call_id: id('call'), name: tool.name, input });
      } else {
        out.push({ id: id('fc'), type: 'function_call', status: 'completed', call_id: id('call'), name: tool.name, arguments: JSON.stringify(tool.input) });
      }
    }
    return out;
  }

  function responseObject(
    req: ModelRequest,
    status: string,
    output: Json[],
    usage: { input: number; output: number } | null,
    respId: string,
    created: number,
  ): Json {
    const body = req.body as Json;
    return {
      id: respId,
      object: 'response',
      created_at: created,
      status,
      background: false,
      error: null,
      incomplete_details: null,
      instructions: body['instructions'] ?? null,
      max_output_tokens: body['max_output_tokens'] ?? null,
      model: req.model,
      output,
      parallel_tool_calls: body['parallel_tool_calls'] ?? true,
      previous_response_id: body['previous_response_id'] ?? null,
      reasoning: { effort: null, summary: null },
      store: body['store'] ?? false,
      temperature: 1,
      text: { format: { type: 'text' } },
      tool_choice: body['tool_choice'] ?? 'auto',
      tools: Array.isArray(body['tools']) ? body['tools'] : [],
      top_p: 1,
      truncation: 'disabled',
      usage:
        usage === null
          ? null
          : {
              input_tokens: usage.input,
              input_tokens_details: { cached_tokens: 0 },
              output_tokens: usage.output,
              output_tokens_details: { reasoning_tokens: 0 },
              total_tokens: usage.input + usage.output,
            },
      metadata: {},
    };
  }

  function answerResponses(req: ModelRequest, res: ServerResponse, step: ModelStep): void {
    const usage = usageFor(req);
    const output = responsesOutput(req, step);
    const respId = id('resp');
    const created = now();
    if (!req.stream) {
      sendJson(res, 200, responseObject(req, 'completed', output, usage, respId, created));
      return;
    }
    openSse(res);
    let n = 0;
    const emit = (type: string, data: Json) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: n++, ...data })}\n\n`);
    emit('response.created', { response: responseObject(req, 'in_progress', [], null, respId, created) });
    emit('response.in_progress', { response: responseObject(req, 'in_progress', [], null, respId, created) });
    output.forEach((item, index) => {
      const itemId = item['id'] as string;
      if (item['type'] === 'message') {
        const text = (item['content'] as Json[])[0]!['text'] as string;
        emit('response.output_item.added', { output_index: index, item: { ...item, status: 'in_progress', content: [] } });
        emit('response.content_part.added', {
          item_id: itemId,
          output_index: index,
          content_index: 0,
          part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
        });
        for (const delta of chunks(text)) emit('response.output_text.delta', { item_id: itemId, output_index: index, content_index: 0, delta, logprobs: [] });
        emit('response.output_text.done', { item_id: itemId, output_index: index, content_index: 0, text, logprobs: [] });
        emit('response.content_part.done', {
          item_id: itemId,
          output_index: index,
          content_index: 0,
          part: { type: 'output_text', text, annotations: [], logprobs: [] },
        });
      } else if (item['type'] === 'function_call') {
        const args = item['arguments'] as string;
        emit('response.output_item.added', { output_index: index, item: { ...item, status: 'in_progress', arguments: '' } });
        for (const delta of chunks(args)) emit('response.function_call_arguments.delta', { item_id: itemId, output_index: index, delta });
        emit('response.function_call_arguments.done', { item_id: itemId, output_index: index, name: item['name'], arguments: args });
      } else {
        const input = item['input'] as string;
        emit('response.output_item.added', { output_index: index, item: { ...item, status: 'in_progress', input: '' } });
        for (const delta of chunks(input)) emit('response.custom_tool_call_input.delta', { item_id: itemId, output_index: index, delta });
        emit('response.custom_tool_call_input.done', { item_id: itemId, output_index: index, input });
      }
      emit('response.output_item.done', { output_index: index, item });
    });
    emit('response.completed', { response: responseObject(req, 'completed', output, usage, respId, created) });
    res.end();
  }

  // ---- OpenAI Chat Completions ------------------------------------------------------------------
  function answerChat(req: ModelRequest, res: ServerResponse, step: ModelStep): void {
    const usage = usageFor(req);
    const chatId = id('chatcmpl');
    const created = now();
    const calls = toolsOf(step).map((t) => ({ id: id('call'), type: 'function', function: { name: t.name, arguments: JSON.stringify(t.input) } }));
    const finish = calls.length > 0 ? 'tool_calls' : 'stop';
    const usageJson = { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output };
    if (!req.stream) {
      sendJson(res, 200, {
        id: chatId,
        object: 'chat.completion',
        created,
        model: req.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: step.text ?? null, refusal: null, ...(calls.length > 0 ? { tool_calls: calls } : {}) },
            logprobs: null,
            finish_reason: finish,
          },
        ],
        usage: usageJson,
        system_fingerprint: null,
      });
      return;
    }
    openSse(res);
    const chunk = (choices: Json[], extra: Json = {}) =>
      res.write(
        `data: ${JSON.stringify({ id: chatId, object: 'chat.completion.chunk', created, model: req.model, system_fingerprint: null, choices, ...extra })}\n\n`,
      );
    chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]);
    if (step.text) for (const delta of chunks(step.text)) chunk([{ index: 0, delta: { content: delta }, logprobs: null, finish_reason: null }]);
    calls.forEach((call, index) => {
      chunk([
        {
          index: 0,
          delta: { tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] },
          logprobs: null,
          finish_reason: null,
        },
      ]);
      for (const delta of chunks(call.function.arguments))
        chunk([{ index: 0, delta: { tool_calls: [{ index, function: { arguments: delta } }] }, logprobs: null, finish_reason: null }]);
    });
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]);
    const body = req.body as Json;
    if (isObj(body['stream_options']) && body['stream_options']['include_usage'] === true) chunk([], { usage: usageJson });
    res.write('data: [DONE]\n\n');
    res.end();
  }

  // ---- Anthropic Messages -----------------------------------------------------------------------
  function answerMessages(req: ModelRequest, res: ServerResponse, step: ModelStep): void {
    const usage = usageFor(req);
    const msgId = id('msg');
    const content: Json[] = [];
    if (step.text) content.push({ type: 'text', text: step.text });
    for (const t of toolsOf(step)) content.push({ type: 'tool_use', id: id('toolu'), name: t.name, input: t.input });
    const stopReason = toolsOf(step).length > 0 ? 'tool_use' : 'end_turn';
    const usageJson = (output: number) => ({
      input_tokens: usage.input,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: output,
      service_tier: 'standard',
    });
    const message = (blocks: Json[], stop: string | null, output: number) => ({
      id: msgId,
      type: 'message',
      role: 'assistant',
      model: req.model,
      content: blocks,
      stop_reason: stop,
      stop_sequence: null,
      usage: usageJson(output),
    });
    if (!req.stream) {
      sendJson(res, 200, message(content, stopReason, usage.output));
      return;
    }
    openSse(res);
    const emit = (type: string, data: Json) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    emit('message_start', { message: message([], null, 1) });
    content.forEach((block, index) => {
      if (block['type'] === 'text') {
        emit('content_block_start', { index, content_block: { type: 'text', text: '' } });
        if (index === 0) emit('ping', {});
        for (const text of chunks(block['text'] as string)) emit('content_block_delta', { index, delta: { type: 'text_delta', text } });
      } else {
        emit('content_block_start', { index, content_block: { type: 'tool_use', id: block['id'], name: block['name'], input: {} } });
        for (const partial_json of chunks(JSON.stringify(block['input'])))
          emit('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } });
      }
      emit('content_block_stop', { index });
    });
    emit('message_delta', {
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { input_tokens: usage.input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: usage.output },
    });
    emit('message_stop', {});
    res.end();
  }

  // ---- Side endpoints ---------------------------------------------------------------------------
  function modelIds(): string[] {
    const seen = requests.map((r) => r.model).filter((m) => m !== '');
    return [...new Set(seen.length > 0 ? seen : ['test-model'])];
  }

  function modelsList(res: ServerResponse, anthropic: boolean): void {
    const ids = modelIds();
    if (anthropic) {
      const created = new Date().toISOString();
      sendJson(res, 200, {
        data: ids.map((m) => ({ type: 'model', id: m, display_name: m, created_at: created })),
        has_more: false,
        first_id: ids[0] ?? null,
        last_id: ids[ids.length - 1] ?? null,
      });
    } else {
      sendJson(res, 200, { object: 'list', data: ids.map((m) => ({ id: m, object: 'model', created: now(), owned_by: 'model-server' })) });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://model-server');
    const path = url.pathname;
    const route = path.replace(/^\/v1(?=\/)/, '').replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const anthropic = isAnthropic(req, route);
    const raw = await readBody(req);
    let body: unknown = undefined;
    if (raw.length > 0) {
      try {
        const text = decode(raw, req.headers['content-encoding'] as string | undefined).toString('utf8');
        body = JSON.parse(text);
      } catch {
        body = raw.toString('utf8');
      }
    }
    const api: ModelApi = route.startsWith('/chat/') ? 'chat' : anthropic ? 'messages' : 'responses';
    const json = isObj(body) ? body : {};
    const { toolResults, toolNames } = inspect(api, json);
    const record: ModelRequest = {
      api,
      path,
      model: typeof json['model'] === 'string' ? json['model'] : '',
      stream: json['stream'] === true,
      body,
      headers: { ...req.headers },
      toolResults: toolResults.length,
      toolNames,
      method,
      query: url.search.replace(/^\?/, ''),
      toolOutputs: toolResults,
    };
    requests.push(record);

    if (method === 'GET' && route === '/models') return modelsList(res, anthropic);
    if (method === 'GET' && route.startsWith('/models/')) {
      const m = decodeURIComponent(route.slice('/models/'.length));
      if (anthropic) return sendJson(res, 200, { type: 'model', id: m, display_name: m, created_at: new Date().toISOString() });
      return sendJson(res, 200, { id: m, object: 'model', created: now(), owned_by: 'model-server' });
    }
    if (method === 'POST' && route === '/messages/count_tokens') {
      return sendJson(res, 200, { input_tokens: Math.max(1, Math.ceil(raw.length / 4)) });
    }
    const generation =
      (method === 'POST' && route === '/responses') || (method === 'POST' && route === '/chat/completions') || (method === 'POST' && route === '/messages');
    if (!generation) return notFound(res, anthropic, `model server: no route for ${method} ${path}`);
    if (!isObj(body)) return badRequest(res, anthropic, 'model server: the body is not a JSON object');

    let step: ModelStep;
    try {
      step = options.reply(record);
    } catch (e) {
      return badRequest(res, anthropic, `model server: the script has no reply: ${(e as Error).message}`);
    }
    if (api === 'responses') answerResponses(record, res, step);
    else if (api === 'chat') answerChat(record, res, step);
    else answerMessages(record, res, step);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: String(e), type: 'server_error', param: null, code: null } });
      else res.end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      const hostPart = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${hostPart}:${port}`,
        port,
        requests,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** Splits a text into a few deltas (as a streaming model sends it). */
function chunks(text: string): string[] {
  if (text.length === 0) return [];
  const size = Math.max(1, Math.ceil(text.length / 3));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}
