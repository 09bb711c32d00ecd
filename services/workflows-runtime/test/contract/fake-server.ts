import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the contract sees it: the raw path (percent-encoding kept), the query, and the parsed JSON body. */
export interface ContractRequest {
  method: string;
  /** Raw request path without the query, percent-encoding as sent. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; undefined when the request had none. */
  body: unknown;
  rawBody: string;
}

export interface Validation {
  /** The operation the request was matched to (operationId, or the route's name). */
  operation?: string;
  /** Path parameters, decoded. */
  params: Record<string, string>;
  /** Every way the request departs from the description; empty when it conforms. */
  errors: string[];
}

/** A machine-readable API description the fake holds every request (and its own responses) to. */
export interface Contract {
  validateRequest(req: ContractRequest): Validation;
  /** Fills in the required fields the fake left out (where the description makes that cheap) and checks the result. */
  shapeResponse(operation: string, status: number, body: unknown): { body: unknown; errors: string[] };
}

export interface Reply {
  status: number;
  /** JSON body. */
  body?: unknown;
  /** Plain-text body instead of JSON. */
  text?: string;
  headers?: Record<string, string>;
}

export interface ScriptedReply extends Reply {
  /** The operation to answer this way instead of handling it. */
  operation: string;
  /** How many times (default 1). */
  times?: number;
}

export interface RecordedCall {
  method: string;
  path: string;
  query: Record<string, string>;
  operation?: string;
  body: unknown;
  headers: IncomingHttpHeaders;
}

export interface ForgeBehaviour {
  /** Checked after validation and before any scripted reply: a reply here (401) ends the request. */
  authorize(req: ContractRequest): Reply | undefined;
  /** Handles a conforming request; undefined when the fake does not implement the operation (a violation). */
  handle(operation: string, params: Record<string, string>, req: ContractRequest): Reply | undefined;
  /** Headers on every response (rate-limit headers and the like). */
  headers?(): Record<string, string>;
}

/**
 * A real HTTP server on 127.0.0.1 (port 0) that plays a forge's API: every request is validated against the
 * contract before the fake looks at it, a request that does not conform is recorded in `violations` and answered
 * 400 (so the client sees the failure too), and every successful JSON response is shaped and checked against the
 * contract as well. Tests assert `violations` is empty.
 */
export class FakeForge {
  url = '';
  readonly violations: string[] = [];
  readonly calls: RecordedCall[] = [];
  #server: Server | undefined;
  #scripted: ScriptedReply[] = [];

  constructor(
    private readonly contract: Contract,
    private readonly behaviour: ForgeBehaviour,
    private readonly name: string,
  ) {}

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      this.#serve(req, res).catch((err: unknown) => {
        this.violations.push(`${this.name} fake crashed on ${req.method} ${req.url}: ${err instanceof Error ? err.stack : String(err)}`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'fake crashed' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  }

  /** Answers the next `times` requests to `operation` with this reply (after validation and auth). */
  script(reply: ScriptedReply): void {
    this.#scripted.push({ times: 1, ...reply });
  }

  callsTo(operation: string): RecordedCall[] {
    return this.calls.filter((c) => c.operation === operation);
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const target = new URL(req.url ?? '/', 'http://fake.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    // The raw path: URL normalises nothing in the pathname that matters here (it keeps %2F), but take it from the request line anyway.
    const path = (req.url ?? '/').replace(/[?#].*$/, '');
    let body: unknown;
    const errors: string[] = [];
    if (rawBody.length) {
      const type = String(req.headers['content-type'] ?? '');
      if (!/^application\/json\b/i.test(type)) errors.push(`body sent with content-type "${type}", not application/json`);
      try {
        body = JSON.parse(rawBody) as unknown;
      } catch {
        errors.push('body is not JSON');
      }
    }
    const cr: ContractRequest = { method, path, query: target.searchParams, headers: req.headers, body, rawBody };
    const v = this.contract.validateRequest(cr);
    errors.push(...v.errors);
    this.calls.push({ method, path, query: Object.fromEntries(target.searchParams), operation: v.operation, body, headers: req.headers });
    if (errors.length || !v.operation) {
      const where = `${method} ${req.url}${v.operation ? ` (${v.operation})` : ''}`;
      for (const e of errors.length ? errors : ['matches no described operation']) this.violations.push(`${where}: ${e}`);
      return this.#send(res, { status: 400, body: { message: `contract violation: ${errors.join('; ') || 'no such operation'}` } });
    }
    const denied = this.behaviour.authorize(cr);
    if (denied) return this.#send(res, denied);
    const scripted = this.#scripted.find((s) => s.operation === v.operation);
    if (scripted) {
      if (scripted.times !== undefined && --scripted.times <= 0) this.#scripted.splice(this.#scripted.indexOf(scripted), 1);
      return this.#send(res, scripted);
    }
    const reply = this.behaviour.handle(v.operation, v.params, cr);
    if (!reply) {
      this.violations.push(`${method} ${req.url}: the ${this.name} fake does not implement ${v.operation}`);
      return this.#send(res, { status: 501, body: { message: `not implemented by the fake: ${v.operation}` } });
    }
    if (reply.status >= 200 && reply.status < 300 && reply.body !== undefined) {
      const shaped = this.contract.shapeResponse(v.operation, reply.status, reply.body);
      for (const e of shaped.errors) this.violations.push(`response of ${v.operation} ${reply.status}: ${e}`);
      return this.#send(res, { ...reply, body: shaped.body });
    }
    return this.#send(res, reply);
  }

  #send(res: ServerResponse, reply: Reply): void {
    const headers: Record<string, string> = { ...(this.behaviour.headers?.() ?? {}), ...(reply.headers ?? {}) };
    let payload = '';
    if (reply.text !== undefined) {
      payload = reply.text;
      headers['content-type'] ??= 'text/plain; charset=utf-8';
    } else if (reply.body !== undefined) {
      payload = JSON.stringify(reply.body);
      headers['content-type'] ??= 'application/json; charset=utf-8';
    }
    res.writeHead(reply.status, headers);
    res.end(payload);
  }
}
