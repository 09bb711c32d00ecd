import { create, toJson, type JsonObject } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import {
  ApplyDefinitionResponseSchema,
  CreateDefinitionResponseSchema,
  DeleteDefinitionResponseSchema,
  DefinitionSpecSchema,
  GetDefinitionResponseSchema,
  ListDefinitionsResponseSchema,
  type ApplyDefinitionRequest,
  type CreateDefinitionRequest,
  type DeleteDefinitionRequest,
  type DefinitionSpecJson,
  type GetDefinitionRequest,
  type ListDefinitionsRequest,
} from '@ameide/contracts';
import type { SandboxPolicy } from '@ameide/config';
import type { DefinitionRepository } from '@ameide/db';
import { AlreadyExistsError, FailedPreconditionError } from '../errors.js';
import { definitionToProto } from '../mapping.js';
import { PAGED_LISTS, pageAfter, pageOf } from '../page-token.js';
import { normaliseDefinitionSpec, pageSize, requireName } from '../validation.js';
import { handle, principalOf } from './context.js';
import { deletedMessage, findDefinition } from './plans.js';

function specJson(req: { spec?: CreateDefinitionRequest['spec'] }, policy: SandboxPolicy): DefinitionSpecJson {
  const spec = normaliseDefinitionSpec(req.spec, policy);
  return toJson(DefinitionSpecSchema, spec) as JsonObject as DefinitionSpecJson;
}

/** Definition RPCs. */
export class DefinitionHandlers {
  constructor(
    private readonly definitions: DefinitionRepository,
    private readonly policy: SandboxPolicy,
  ) {}

  createDefinition = (req: CreateDefinitionRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const row = await this.definitions.insert(tenantId, requireName('name', req.name), specJson(req, this.policy), req.annotations);
      if (!row) throw new AlreadyExistsError(`definition "${req.name}" already exists; use ApplyDefinition to update it`);
      return create(CreateDefinitionResponseSchema, { definition: definitionToProto(row) });
    });

  applyDefinition = (req: ApplyDefinitionRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const { row, changed } = await this.definitions.apply(tenantId, requireName('name', req.name), specJson(req, this.policy), req.annotations);
      return create(ApplyDefinitionResponseSchema, { definition: definitionToProto(row), changed });
    });

  getDefinition = (req: GetDefinitionRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const row = await findDefinition(this.definitions, tenantId, 'id_or_name', req.idOrName);
      return create(GetDefinitionResponseSchema, { definition: definitionToProto(row) });
    });

  listDefinitions = (req: ListDefinitionsRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const list = PAGED_LISTS.definitions;
      const filter = [tenantId, req.showDeleted];
      const size = pageSize(req.pageSize);
      // One more than the page: whether there is a next page.
      const rows = await this.definitions.list(tenantId, size + 1, req.showDeleted, pageAfter(list, req.pageToken, filter));
      const { page, nextPageToken } = pageOf(list, rows, size, (r) => r.listKey, filter);
      return create(ListDefinitionsResponseSchema, { definitions: page.map((r) => definitionToProto(r)), nextPageToken });
    });

  deleteDefinition = (req: DeleteDefinitionRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const row = await findDefinition(this.definitions, tenantId, 'id_or_name', req.idOrName);
      const deleted = row.deletedAt ? undefined : await this.definitions.delete(tenantId, row.id);
      if (!deleted) throw new FailedPreconditionError(deletedMessage(row));
      return create(DeleteDefinitionResponseSchema, { definition: definitionToProto(deleted) });
    });
}
