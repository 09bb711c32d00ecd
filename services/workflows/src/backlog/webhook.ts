import { createHmac, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import { backlogV1 } from '@ameide/contracts';
import type { DeliveryRepository } from '@ameide/db';
import { toConnectError } from '../errors.js';
import { MAX_REQUEST_BYTES } from '../limits.js';
import { checkRequest } from '../validation.js';

/** Where the backlog pushes work item revisions. */
export const WEBHOOK_PATH = '/webhooks/work-items';
/** How far the timestamp of a delivery may lie from now. */
export const MAX_SKEW_SECONDS = 300;

/** The headers of a delivery. */
export const WEBHOOK_HEADERS = {
  tenant: 'x-ameide-tenant',
  timestamp: 'x-ameide-timestamp',
  delivery: 'x-ameide-delivery',
  signature: 'x-ameide-signature',
} as const;

/** The signature of a delivery: HMAC-SHA256 of `<timestamp>.<raw body>` with the tenant's secret, as `sha256=<hex>`. */
export function signDelivery(secret: string, timestamp: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

const HTTP_STATUS: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.NotFound]: 404,
  [Code.FailedPrecondition]: 409,
  [Code.PermissionDenied]: 403,
  [Code.Unauthenticated]: 401,
  [Code.ResourceExhausted]: 413,
  [Code.Unavailable]: 503,
};

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * `POST /webhooks/work-items`: the body is an UpsertWorkItemRequest as JSON. The delivery is taken
 * only when it is signed with the tenant's secret (AMEIDE_WEBHOOK_SECRETS), its timestamp is within
 * five minutes of now, and its delivery id was not seen before; otherwise it is refused (4xx, one
 * line saying why) and nothing is stored. A taken delivery is processed like UpsertWorkItem.
 */
export function workItemWebhook(deps: {
  secrets: Record<string, string>;
  deliveries: DeliveryRepository;
  upsert: (tenantId: string, req: backlogV1.UpsertWorkItemRequest) => Promise<backlogV1.UpsertWorkItemResponse>;
  now?: () => number;
}) {
  const reply = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  return async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    try {
      if (req.method !== 'POST') throw new Refusal(405, `use POST for ${WEBHOOK_PATH}`);
      const header = (name: string) => {
        const v = req.headers[name];
        if (typeof v !== 'string' || !v) throw new Refusal(400, `the ${name} header is missing`);
        return v;
      };
      const tenantId = header(WEBHOOK_HEADERS.tenant);
      const timestamp = header(WEBHOOK_HEADERS.timestamp);
      const deliveryId = header(WEBHOOK_HEADERS.delivery);
      const signature = header(WEBHOOK_HEADERS.signature);
      const body = await readBody(req);
      const secret = deps.secrets[tenantId];
      if (!secret) throw new Refusal(401, `no webhook secret is configured for tenant "${tenantId}" (AMEIDE_WEBHOOK_SECRETS)`);
      const expected = Buffer.from(signDelivery(secret, timestamp, body));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new Refusal(401, `the ${WEBHOOK_HEADERS.signature} does not match: sign "<timestamp>.<raw body>" with HMAC-SHA256 and the tenant's secret`);
      }
      const sent = Number(timestamp);
      const now = (deps.now ?? Date.now)() / 1000;
      if (!/^\d{1,12}$/.test(timestamp) || Math.abs(now - sent) > MAX_SKEW_SECONDS) {
        throw new Refusal(401, `the ${WEBHOOK_HEADERS.timestamp} (unix seconds) must be within ${MAX_SKEW_SECONDS / 60} minutes of now`);
      }
      if (deliveryId.length > 256) throw new Refusal(400, `the ${WEBHOOK_HEADERS.delivery} must be at most 256 characters`);
      if (await deps.deliveries.seen(tenantId, deliveryId))
        throw new Refusal(409, `delivery ${deliveryId} was received before: a replay is not processed again`);
      let message: backlogV1.UpsertWorkItemRequest;
      try {
        message = fromJson(backlogV1.UpsertWorkItemRequestSchema, JSON.parse(body.toString('utf8')) as JsonValue);
      } catch (err) {
        throw new Refusal(400, `the body must be an UpsertWorkItemRequest as JSON: ${(err as Error).message}`);
      }
      const result = await deps.upsert(tenantId, checkRequest(backlogV1.UpsertWorkItemRequestSchema, message));
      // Recorded once processed: a delivery that failed half-way may be sent again.
      await deps.deliveries.record(tenantId, deliveryId);
      reply(res, 200, toJson(backlogV1.UpsertWorkItemResponseSchema, result, { alwaysEmitImplicit: true }));
    } catch (err) {
      if (err instanceof Refusal) return reply(res, err.status, { error: err.message });
      const e = toConnectError(err);
      const status = HTTP_STATUS[e.code] ?? 500;
      if (status === 500) console.error(`work item webhook: ${e.rawMessage}`);
      reply(res, status, { error: e.rawMessage, code: Code[e.code] });
    }
  };
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES) throw new Refusal(413, `the body must be at most ${MAX_REQUEST_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
