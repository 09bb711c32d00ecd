import { createClient, type Client, type Interceptor, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import { backlogV1, governanceV1, WorkflowService } from '@ameide/contracts';
import { QUICK_COMPRESSIONS } from './compression.js';

export type WorkflowServiceClient = Client<typeof WorkflowService>;

/** Adds `authorization: Bearer <token>` to every call. */
export function createBearerInterceptor(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set('authorization', `Bearer ${token}`);
    return next(req);
  };
}

export interface ClientOptions {
  /** Base URL of the workflow service, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** Bearer token: a JWT or a static API key. */
  token: string;
  /** Wire protocol: Connect over HTTP/1.1 (default) or gRPC over HTTP/2. */
  protocol?: 'connect' | 'grpc';
}

/** Builds a transport for the workflow service with bearer authentication. */
export function createWorkflowTransport(opts: ClientOptions): Transport {
  const interceptors = [createBearerInterceptor(opts.token)];
  return opts.protocol === 'grpc'
    ? createGrpcTransport({ baseUrl: opts.baseUrl, interceptors, acceptCompression: QUICK_COMPRESSIONS })
    : createConnectTransport({ baseUrl: opts.baseUrl, httpVersion: '1.1', interceptors, acceptCompression: QUICK_COMPRESSIONS });
}

/** A typed WorkflowService client. */
export function createWorkflowServiceClient(opts: ClientOptions): WorkflowServiceClient {
  return createClient(WorkflowService, createWorkflowTransport(opts));
}

export { Code, ConnectError } from '@connectrpc/connect';

export type BacklogServiceClient = Client<typeof backlogV1.BacklogService>;

/** A typed BacklogService client (work items and methodology profiles), on the same port. */
export function createBacklogServiceClient(opts: ClientOptions): BacklogServiceClient {
  return createClient(backlogV1.BacklogService, createWorkflowTransport(opts));
}

export type GovernanceServiceClient = Client<typeof governanceV1.GovernanceService>;

/** A typed GovernanceService client (evidence, attestations, impediments, notifications), on the same port. */
export function createGovernanceServiceClient(opts: ClientOptions): GovernanceServiceClient {
  return createClient(governanceV1.GovernanceService, createWorkflowTransport(opts));
}
