import { readFileSync } from 'node:fs';
import { fromJson, type DescMessage, type JsonValue, type MessageShape } from '@bufbuild/protobuf';
import { backlogV1 } from '@ameide/contracts';
import { parse } from 'yaml';
import { UsageError } from './args.js';

/** Reads a YAML (or JSON) file into a plain value; errors name the file. */
function readYaml(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${what} file ${path}`);
  }
  try {
    return parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

const STATE_NAMES = backlogV1.WorkItemStateSchema.values.map((v) => v.name.replace('WORK_ITEM_STATE_', '').toLowerCase()).filter((n) => n !== 'unspecified');

/** A work item state as people write it: `ready`, `in-progress`, `in_progress` or `WORK_ITEM_STATE_READY`. */
export function parseWorkItemState(s: string): backlogV1.WorkItemState {
  const name = s.startsWith('WORK_ITEM_STATE_') ? s : `WORK_ITEM_STATE_${s.toUpperCase().replace(/-/g, '_')}`;
  const v = backlogV1.WorkItemStateSchema.values.find((x) => x.name === name);
  if (!v || v.number === 0) throw new UsageError(`state ${s}: use ${STATE_NAMES.join(', ')}`);
  return v.number;
}

/** Replaces a short state name at obj[key] by its proto JSON name, so that fromJson accepts it. */
function normaliseState(obj: unknown, key: string, field: string, path: string): void {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return;
  const rec = obj as Record<string, unknown>;
  const v = rec[key];
  if (typeof v !== 'string') return;
  try {
    rec[key] = backlogV1.WorkItemStateSchema.values.find((x) => x.number === parseWorkItemState(v))!.name;
  } catch (err) {
    throw new UsageError(`${path}: ${field}: ${(err as Error).message}`);
  }
}

function toMessage<Desc extends DescMessage>(schema: Desc, doc: unknown, path: string): MessageShape<Desc> {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${path}: must be a mapping`);
  try {
    return fromJson(schema, doc as JsonValue);
  } catch (err) {
    throw new UsageError(`${path}: ${(err as Error).message}`);
  }
}

/** Reads a work item file: an UpsertWorkItemRequest in proto JSON field names (YAML or JSON). */
export function readWorkItemFile(path: string): backlogV1.UpsertWorkItemRequest {
  const doc = readYaml(path, 'work item');
  normaliseState((doc as { spec?: unknown } | null)?.spec, 'state', 'spec.state', path);
  const req = toMessage(backlogV1.UpsertWorkItemRequestSchema, doc, path);
  if (!req.id) throw new UsageError(`${path}: id: is required`);
  return req;
}

/** Reads a profile file: an ApplyProfileRequest (name and spec) in proto JSON field names (YAML or JSON). */
export function readProfileFile(path: string): backlogV1.ApplyProfileRequest {
  const doc = readYaml(path, 'profile');
  for (const key of ['triggerState', 'trigger_state']) normaliseState((doc as { spec?: unknown } | null)?.spec, key, `spec.${key}`, path);
  const req = toMessage(backlogV1.ApplyProfileRequestSchema, doc, path);
  if (!req.name) throw new UsageError(`${path}: name: is required`);
  return req;
}
