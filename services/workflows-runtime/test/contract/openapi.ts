import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Contract, ContractRequest, Validation } from './fake-server.js';

/** A JSON (Schema / OpenAPI) object; the description is only read, never typed further than this. */
type Node = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Node>;
  components?: Node;
}

/** GitHub's published REST description for api.github.com, as @octokit/openapi ships it (OpenAPI 3.0, with $refs). */
export function loadGitHubDescription(): OpenApiDocument {
  const require = createRequire(import.meta.url);
  return require('@octokit/openapi/generated/api.github.com.json') as OpenApiDocument;
}

/** A JSON pointer from tokens, each escaped (~0, ~1) and percent-encoded for use in a $ref URI fragment. */
function pointer(tokens: ReadonlyArray<string | number>): string {
  return tokens.map((t) => '/' + encodeURIComponent(String(t).replace(/~/g, '~0').replace(/\//g, '~1'))).join('');
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Route {
  template: string;
  regex: RegExp;
  names: string[];
  literalSegments: number;
}

interface CompiledOperation {
  operationId: string;
  template: string;
  method: string;
  path: ValidateFunction;
  query: ValidateFunction;
  body?: ValidateFunction;
  bodyRequired: boolean;
  /** Top-level properties a JSON body may have (one set per oneOf/anyOf branch); undefined when any are allowed. */
  bodyKeys?: Array<Set<string>>;
}

function formatErrors(prefix: string, errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map(
    (e) => `${prefix}${e.instancePath || ''} ${e.message ?? e.keyword}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`,
  );
}

function newAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, logger: false, coerceTypes: coerce ? 'array' : false });
  // The formats GitHub's description uses that matter for these endpoints; others are ignored (strict: false).
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/.test(s));
  ajv.addFormat('date', /^\d{4}-\d\d-\d\d$/);
  ajv.addFormat('uri', /^[a-z][a-z0-9+.-]*:\S*$/i);
  ajv.addFormat('email', /^\S+@\S+$/);
  return ajv;
}

/**
 * Holds requests to an OpenAPI 3.0 description. A request is matched to an operation by method and path template
 * (the template with the most literal segments wins, as in routers); its path and query parameters are validated
 * against the declared parameter schemas (strings coerced to the declared types; undeclared query parameters are
 * an error), and its JSON body against the requestBody schema, with undeclared top-level body properties an error
 * too (GitHub's request schemas rarely say additionalProperties: false, but a client sending a field the API does
 * not take is exactly the kind of drift this is here to catch).
 *
 * The schemas are not copied or rewritten: the whole document is added to ajv under the id "api", and each check
 * is a `$ref` into it (`api#/paths/...`), so the description's own `$ref: "#/components/schemas/..."` resolve
 * against the document. `nullable` is understood by ajv itself; unknown OpenAPI keywords are ignored (strict: false).
 */
export class OpenApiContract implements Contract {
  readonly #doc: OpenApiDocument;
  readonly #routes: Route[];
  readonly #strict = newAjv(false);
  readonly #coercing = newAjv(true);
  readonly #compiled = new Map<string, CompiledOperation>();
  readonly #responses = new Map<string, ValidateFunction>();

  constructor(doc: OpenApiDocument) {
    this.#doc = doc;
    this.#strict.addSchema(doc as unknown as Node, 'api');
    this.#coercing.addSchema(doc as unknown as Node, 'api');
    this.#routes = Object.keys(doc.paths).map((template) => {
      const names: string[] = [];
      const segments = template.split('/');
      const source = segments
        .map((seg) =>
          seg
            .split(/(\{[^}]+\})/)
            .map((part) => {
              const m = /^\{([^}]+)\}$/.exec(part);
              if (!m) return escapeRegExp(part);
              names.push(m[1]);
              return '([^/]+)';
            })
            .join(''),
        )
        .join('/');
      return { template, regex: new RegExp(`^${source}$`), names, literalSegments: segments.filter((s) => s && !s.includes('{')).length };
    });
  }

  /** Follows `$ref`s (document-local) until a non-reference node. */
  resolve(node: unknown): Node {
    let n = node as Node;
    for (let i = 0; i < 32 && n && typeof n.$ref === 'string'; i++) n = this.#at(n.$ref);
    return n;
  }

  #at(ref: string): Node {
    if (!ref.startsWith('#/')) throw new Error(`only document-local $refs are supported: ${ref}`);
    let n: unknown = this.#doc;
    for (const raw of ref.slice(2).split('/')) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      n = (n as Node | undefined)?.[key];
    }
    if (n === undefined) throw new Error(`dangling $ref ${ref}`);
    return n as Node;
  }

  #match(method: string, path: string): { route: Route; op: Node; params: Record<string, string> } | { error: string } {
    const candidates = this.#routes
      .map((route) => ({ route, m: route.regex.exec(path) }))
      .filter((c): c is { route: Route; m: RegExpExecArray } => c.m !== null)
      .sort((a, b) => b.route.literalSegments - a.route.literalSegments);
    if (!candidates.length) return { error: `no path template in the description matches ${path}` };
    const { route, m } = candidates[0];
    const op = this.#doc.paths[route.template][method.toLowerCase()] as Node | undefined;
    if (!op) return { error: `${method} is not described for ${route.template}` };
    const params: Record<string, string> = {};
    let bad = '';
    route.names.forEach((name, i) => {
      try {
        params[name] = decodeURIComponent(m[i + 1]);
      } catch {
        bad = `path parameter ${name} is not valid percent-encoding`;
      }
    });
    if (bad) return { error: bad };
    return { route, op, params };
  }

  #compile(template: string, method: string, op: Node): CompiledOperation {
    const operationId = String(op.operationId);
    const cached = this.#compiled.get(operationId);
    if (cached) return cached;
    const lower = method.toLowerCase();
    const pathItem = this.#doc.paths[template];
    const declared: Array<{ param: Node; ptr: string }> = [];
    const collect = (list: unknown, base: Array<string | number>): void => {
      if (!Array.isArray(list)) return;
      list.forEach((p: unknown, i) => {
        const ref = (p as Node).$ref;
        const param = this.resolve(p);
        const ptr = typeof ref === 'string' ? `${ref.slice(1)}/schema` : pointer([...base, i, 'schema']);
        // Operation-level parameters override path-level ones of the same name and location.
        const same = declared.findIndex((d) => d.param.name === param.name && d.param.in === param.in);
        if (same >= 0) declared.splice(same, 1);
        declared.push({ param, ptr });
      });
    };
    collect(pathItem.parameters, ['paths', template, 'parameters']);
    collect(op.parameters, ['paths', template, lower, 'parameters']);
    const objectOf = (where: string): Node => {
      const ps = declared.filter((d) => d.param.in === where);
      return {
        type: 'object',
        properties: Object.fromEntries(ps.map((d) => [String(d.param.name), { $ref: `api#${d.ptr}` }])),
        required: ps.filter((d) => d.param.required === true).map((d) => String(d.param.name)),
        additionalProperties: false,
      };
    };
    const compiled: CompiledOperation = {
      operationId,
      template,
      method: lower,
      path: this.#coercing.compile(objectOf('path')),
      query: this.#coercing.compile(objectOf('query')),
      bodyRequired: false,
    };
    const requestBody = op.requestBody ? this.resolve(op.requestBody) : undefined;
    if (requestBody) {
      const content = (requestBody.content ?? {}) as Node;
      if (content['application/json']) {
        const ref = (op.requestBody as Node).$ref;
        const bodyPtr = typeof ref === 'string' ? ref.slice(1) : pointer(['paths', template, lower, 'requestBody']);
        compiled.body = this.#strict.compile({ $ref: `api#${bodyPtr}${pointer(['content', 'application/json', 'schema'])}` });
        compiled.bodyKeys = this.#keySets((content['application/json'] as Node).schema);
      }
      compiled.bodyRequired = requestBody.required === true;
    }
    this.#compiled.set(operationId, compiled);
    return compiled;
  }

  /** The top-level property names each alternative of an object schema declares (undefined: not restricted). */
  #keySets(schema: unknown): Array<Set<string>> | undefined {
    const s = this.resolve(schema);
    const alternatives = (s.oneOf ?? s.anyOf) as unknown[] | undefined;
    if (alternatives) {
      const sets = alternatives.map((a) => this.#keySets(a));
      return sets.some((x) => x === undefined) ? undefined : (sets.flat() as Array<Set<string>>);
    }
    if (s.properties && typeof s.properties === 'object' && s.additionalProperties === undefined) return [new Set(Object.keys(s.properties))];
    return undefined;
  }

  validateRequest(req: ContractRequest): Validation {
    const matched = this.#match(req.method, req.path);
    if ('error' in matched) return { params: {}, errors: [matched.error] };
    const { route, op, params } = matched;
    const c = this.#compile(route.template, req.method, op);
    const errors: string[] = [];
    const pathData: Node = { ...params };
    if (!c.path(pathData)) errors.push(...formatErrors('path', c.path.errors));
    const query: Node = {};
    for (const key of new Set(req.query.keys())) {
      const all = req.query.getAll(key);
      query[key] = all.length > 1 ? all : all[0];
    }
    if (!c.query(query)) errors.push(...formatErrors('query', c.query.errors));
    if (req.body === undefined) {
      if (c.bodyRequired) errors.push('request body is required');
    } else if (!c.body) {
      errors.push(`${c.operationId} takes no JSON body`);
    } else {
      if (!c.body(req.body)) errors.push(...formatErrors('body', c.body.errors));
      if (c.bodyKeys && req.body && typeof req.body === 'object' && !Array.isArray(req.body)) {
        const keys = Object.keys(req.body);
        if (!c.bodyKeys.some((set) => keys.every((k) => set.has(k)))) {
          const allowed = new Set(c.bodyKeys.flatMap((s) => [...s]));
          errors.push(`body has properties the operation does not take: ${keys.filter((k) => !allowed.has(k)).join(', ') || keys.join(', ')}`);
        }
      }
    }
    return { operation: c.operationId, params, errors: errors.map((e) => `${c.operationId}: ${e}`) };
  }

  /** The response schema of an operation for a status, or undefined if the description has none. */
  #responseSchema(operation: string, status: number): { ptr: string; schema: Node } | undefined {
    const c = this.#compiled.get(operation);
    if (!c) return undefined;
    const op = this.#doc.paths[c.template][c.method] as Node;
    const responses = (op.responses ?? {}) as Node;
    const entry = responses[String(status)];
    if (!entry) return undefined;
    const ref = (entry as Node).$ref;
    const base = typeof ref === 'string' ? ref.slice(1) : pointer(['paths', c.template, c.method, 'responses', String(status)]);
    const content = (this.resolve(entry).content ?? {}) as Node;
    const media = content['application/json'] as Node | undefined;
    if (!media?.schema) return undefined;
    return { ptr: `${base}${pointer(['content', 'application/json', 'schema'])}`, schema: media.schema as Node };
  }

  /** A minimal instance of a schema: required properties only, the first enum value / alternative, nulls where allowed. */
  sample(schema: unknown, depth = 0, nonNull = false): unknown {
    const s = this.resolve(schema);
    if (depth > 40) return null;
    if (Array.isArray(s.allOf)) return Object.assign({}, ...s.allOf.map((x) => this.sample(x, depth + 1, true) as Node));
    const alternatives = (s.oneOf ?? s.anyOf) as unknown[] | undefined;
    if (alternatives?.length) return this.sample(alternatives[0], depth + 1, nonNull);
    if (s.nullable === true && !nonNull) return null;
    if (Array.isArray(s.enum)) return s.enum[0];
    const type = s.type ?? (s.properties ? 'object' : undefined);
    switch (type) {
      case 'object': {
        const props = (s.properties ?? {}) as Node;
        const out: Node = {};
        for (const k of (s.required ?? []) as string[]) out[k] = this.sample(props[k] ?? {}, depth + 1);
        return out;
      }
      case 'array':
        return typeof s.minItems === 'number' && s.minItems > 0 ? [this.sample(s.items, depth + 1)] : [];
      case 'string':
        if (s.format === 'date-time') return '2026-01-01T00:00:00Z';
        if (s.format === 'date') return '2026-01-01';
        if (s.format === 'uri') return 'https://fake.invalid/';
        if (s.format === 'email') return 'someone@fake.invalid';
        return 'x'.repeat(typeof s.minLength === 'number' ? s.minLength : 0);
      case 'integer':
      case 'number':
        return typeof s.minimum === 'number' ? s.minimum : 1;
      case 'boolean':
        return false;
      default:
        return null;
    }
  }

  /** The property schemas of an object schema, through allOf and the first oneOf/anyOf alternative. */
  #properties(schema: unknown, depth = 0): Node {
    const s = this.resolve(schema);
    if (depth > 10) return {};
    const own = (s.properties ?? {}) as Node;
    const parts = [...((s.allOf ?? []) as unknown[]), ...(((s.oneOf ?? s.anyOf) as unknown[] | undefined)?.slice(0, 1) ?? [])];
    return Object.assign({}, ...parts.map((p) => this.#properties(p, depth + 1)), own) as Node;
  }

  #items(schema: unknown): unknown {
    const s = this.resolve(schema);
    if (s.items) return s.items;
    const alternatives = (s.oneOf ?? s.anyOf) as unknown[] | undefined;
    return alternatives?.length ? this.#items(alternatives[0]) : undefined;
  }

  /**
   * `value` completed to the schema: every object in it (nested ones and array items too) gets the required
   * properties it lacks from {@link sample}; what the fake set is kept as it is.
   */
  shape(schema: unknown, value: unknown, depth = 0): unknown {
    if (depth > 40 || value === null || value === undefined) return value;
    if (Array.isArray(value)) {
      const items = this.#items(schema);
      return items ? value.map((v) => this.shape(items, v, depth + 1)) : value;
    }
    if (!isPlain(value)) return value;
    const base = this.sample(schema, depth, true);
    const props = this.#properties(schema);
    const out: Node = isPlain(base) ? { ...base } : {};
    for (const [k, v] of Object.entries(value)) out[k] = this.shape(props[k] ?? {}, v, depth + 1);
    return out;
  }

  shapeResponse(operation: string, status: number, body: unknown): { body: unknown; errors: string[] } {
    const found = this.#responseSchema(operation, status);
    if (!found) return { body, errors: [`status ${status} with a JSON body is not described for ${operation}`] };
    const shaped = this.shape(found.schema, body);
    const key = `${operation} ${status}`;
    let validate = this.#responses.get(key);
    if (!validate) {
      validate = this.#strict.compile({ $ref: `api#${found.ptr}` });
      this.#responses.set(key, validate);
    }
    return validate(shaped) ? { body: shaped, errors: [] } : { body: shaped, errors: formatErrors('', validate.errors) };
  }
}

const isPlain = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);
