import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { UsageError } from './args.js';

/** The definition file format (docs/definitions.md). */
export const definitionFileSchema = z
  .object({
    name: z.string(),
    annotations: z.record(z.string(), z.string()).default({}),
    spec: z
      .object({
        repoUrl: z.string(),
        defaultBranch: z.string().optional(),
        installCommand: z.string().optional(),
        agentCommand: z.string(),
        testCommand: z.string().optional(),
        branchPrefix: z.string().optional(),
        phaseTimeoutSeconds: z.number().int().positive().optional(),
        env: z.record(z.string(), z.string()).default({}),
      })
      .strict(),
  })
  .strict();

export type DefinitionFile = z.infer<typeof definitionFileSchema>;

/** True when the repo URL is a local path (made absolute relative to the file that names it). */
function isLocalPath(url: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^[^/]+@[^:]+:/.test(url);
}

/** Reads and validates a definition file; errors name the file and the field to fix. */
export function readDefinitionFile(path: string): DefinitionFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read definition file ${path}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = definitionFileSchema.safeParse(doc);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join('.');
    throw new UsageError(`${path}: ${field ? `${field}: ` : ''}${issue.message}`);
  }
  const def = result.data;
  if (isLocalPath(def.spec.repoUrl) && !isAbsolute(def.spec.repoUrl)) def.spec.repoUrl = resolve(dirname(path), def.spec.repoUrl);
  return def;
}
