import { createFileRegistry, toBinary, type DescFile, type DescService, type FileRegistry, type MessageInitShape } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ConnectRouter } from '@connectrpc/connect';
import { reflectionV1 } from '@ameide/contracts';

type Request = reflectionV1.ServerReflectionRequest;
type Answer = MessageInitShape<typeof reflectionV1.ServerReflectionResponseSchema>['messageResponse'];

/** gRPC status codes carried in `error_response` (grpc::StatusCode). */
const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;

/** The files defining `roots` and everything they import, as one registry. */
function registryOf(roots: DescFile[]): FileRegistry {
  const known = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (known.has(f.proto.name)) return;
    known.set(f.proto.name, f);
    f.dependencies.forEach(visit);
  };
  roots.forEach(visit);
  return createFileRegistry(...roots.map((f) => createFileRegistry(f.proto, (name) => known.get(name))));
}

/**
 * The file declaring a fully-qualified symbol: a message, enum, service or extension, or a member of one
 * the registry does not index (a method, field or oneof, or a synthetic map entry message).
 */
function fileContaining(registry: FileRegistry, symbol: string): DescFile | undefined {
  const desc = registry.get(symbol);
  if (desc) return desc.file;
  const dot = symbol.lastIndexOf('.');
  const parent = dot > 0 ? registry.get(symbol.slice(0, dot)) : undefined;
  if (!parent) return undefined;
  const members =
    parent.kind === 'service'
      ? parent.methods.map((m) => m.name)
      : parent.kind === 'message'
        ? [...parent.proto.field, ...parent.proto.oneofDecl, ...parent.proto.nestedType].map((d) => d.name)
        : [];
  return members.includes(symbol.slice(dot + 1)) ? parent.file : undefined;
}

/**
 * Registers grpc.reflection.v1.ServerReflection for `services` (Connect-ES has no reflection of its
 * own), so `buf curl --list-services` and grpcurl can list and describe the API. Answers list_services,
 * file_by_filename and file_containing_symbol; the extension requests get UNIMPLEMENTED, which the
 * spec allows.
 */
export function registerReflection(router: ConnectRouter, services: DescService[]): ConnectRouter {
  const all = [...services, reflectionV1.ServerReflection];
  const registry = registryOf([...new Set(all.map((s) => s.file))]);
  const names = all.map((s) => s.typeName);

  /** The file first, then its transitive imports not yet sent on this stream (the spec allows skipping those). */
  const withDeps = (file: DescFile, sent: Set<string>): Answer => {
    const out: DescFile[] = [];
    const visit = (f: DescFile, requested: boolean) => {
      if (sent.has(f.proto.name) && !requested) return;
      sent.add(f.proto.name);
      out.push(f);
      for (const dep of f.dependencies) visit(dep, false);
    };
    visit(file, true);
    return {
      case: 'fileDescriptorResponse',
      value: { fileDescriptorProto: out.map((f) => toBinary(FileDescriptorProtoSchema, f.proto)) },
    };
  };
  const error = (errorCode: number, errorMessage: string): Answer => ({ case: 'errorResponse', value: { errorCode, errorMessage } });

  const answer = (req: Request, sent: Set<string>): Answer => {
    const r = req.messageRequest;
    switch (r.case) {
      case 'listServices':
        return { case: 'listServicesResponse', value: { service: names.map((name) => ({ name })) } };
      case 'fileByFilename': {
        const file = registry.getFile(r.value);
        return file ? withDeps(file, sent) : error(NOT_FOUND, `file not found: ${r.value}`);
      }
      case 'fileContainingSymbol': {
        const file = fileContaining(registry, r.value);
        return file ? withDeps(file, sent) : error(NOT_FOUND, `symbol not found: ${r.value}`);
      }
      case 'fileContainingExtension':
      case 'allExtensionNumbersOfType':
        return error(UNIMPLEMENTED, 'extension lookups are not supported');
      default:
        throw new ConnectError('reflection request names no message_request', Code.InvalidArgument);
    }
  };

  return router.service(reflectionV1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: answer(req, sent) };
      }
    },
  });
}
