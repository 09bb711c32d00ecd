import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { reflectionV1 } from '@ameide/contracts';
import { createBearerInterceptor } from '@ameide/sdk';
import { startHarness, type Harness } from '../../../../tests/support/harness.js';

const BUF = fileURLToPath(new URL('../../../../node_modules/.bin/buf', import.meta.url));

/** Runs `buf curl` over gRPC (h2c). Async on purpose: the service under test answers from this process. */
function bufCurl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** gRPC server reflection (grpc.reflection.v1), as operators' standard tooling uses it. */
describe('gRPC server reflection', () => {
  let h: Harness;
  let auth: string[];
  beforeAll(async () => {
    h = await startHarness();
    // buf curl sends -H headers only on the RPC itself; --reflect-header '*' sends them on reflection too.
    auth = ['-H', `authorization: Bearer ${h.tokens.acme}`, '--reflect-header', '*'];
  });
  afterAll(() => h?.stop());

  it('lets buf curl list services and methods, and call a method described by reflection', async () => {
    const services = await bufCurl([...auth, '--list-services', h.apiUrl]);
    expect(services.stderr).toBe('');
    expect(services.code).toBe(0);
    expect(services.stdout.split('\n')).toEqual(expect.arrayContaining(['ameide.workflows.v1.WorkflowService', 'grpc.reflection.v1.ServerReflection']));

    const methods = await bufCurl([...auth, '--list-methods', h.apiUrl]);
    expect(methods.code).toBe(0);
    expect(methods.stdout.split('\n')).toContain('ameide.workflows.v1.WorkflowService/StartWorkflowRun');

    const call = await bufCurl([...auth, '--data', '{"idOrName":"missing"}', `${h.apiUrl}/ameide.workflows.v1.WorkflowService/GetDefinition`]);
    expect(call.code).not.toBe(0);
    expect(call.stderr).toMatch(/"code":\s*"not_found"/);
  });

  it('requires a bearer token like every other call', async () => {
    const anon = await bufCurl(['--list-services', h.apiUrl]);
    expect(anon.code).not.toBe(0);
    // buf reports code unauthenticated with its own wording (it assumes a Buf registry login is missing).
    expect(anon.stderr).toMatch(/not authenticated/);
    expect(anon.stdout).not.toContain('ameide.workflows.v1.WorkflowService');
  });

  it('answers file, symbol and error requests per the spec', async () => {
    const client = createClient(
      reflectionV1.ServerReflection,
      createGrpcTransport({ baseUrl: h.apiUrl, interceptors: [createBearerInterceptor(h.tokens.acme)] }),
    );
    const requests: Array<reflectionV1.ServerReflectionRequest['messageRequest']> = [
      { case: 'fileContainingSymbol', value: 'ameide.workflows.v1.WorkflowService.GetDefinition' },
      { case: 'fileContainingSymbol', value: 'ameide.workflows.v1.Definition.AnnotationsEntry' },
      { case: 'fileByFilename', value: 'google/protobuf/timestamp.proto' },
      { case: 'fileContainingSymbol', value: 'ameide.workflows.v1.Nope' },
      { case: 'fileByFilename', value: 'nope.proto' },
      { case: 'allExtensionNumbersOfType', value: 'ameide.workflows.v1.Definition' },
    ];
    async function* send() {
      for (const messageRequest of requests) yield { host: 'api.test', messageRequest };
    }
    const responses: reflectionV1.ServerReflectionResponse[] = [];
    for await (const res of client.serverReflectionInfo(send())) responses.push(res);
    expect(responses).toHaveLength(requests.length);
    for (const [i, res] of responses.entries()) {
      expect(res.validHost).toBe('api.test');
      expect(res.originalRequest?.messageRequest).toEqual(requests[i]);
    }
    const files = (i: number) => {
      const r = responses[i]!.messageResponse;
      if (r.case !== 'fileDescriptorResponse') throw new Error(`expected files, got ${r.case}`);
      return r.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
    };
    // The defining file with its imports; later on the same stream, imports already sent are skipped.
    expect(files(0)).toEqual([
      'ameide/workflows/v1/workflows.proto',
      'google/protobuf/duration.proto',
      'google/protobuf/timestamp.proto',
      'ameide/governance/v1/governance.proto',
    ]);
    expect(files(1)).toEqual(['ameide/workflows/v1/workflows.proto']);
    expect(files(2)).toEqual(['google/protobuf/timestamp.proto']);
    const errors = responses.slice(3).map((r) => (r.messageResponse.case === 'errorResponse' ? r.messageResponse.value.errorCode : undefined));
    expect(errors).toEqual([5, 5, 12]);
  });
});
