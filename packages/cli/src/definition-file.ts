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
        guardrails: z
          .object({
            sandbox: z.enum(['bubblewrap', 'none']).optional(),
            allowedPaths: z.array(z.string()).optional(),
            deniedPaths: z.array(z.string()).optional(),
            network: z.object({ install: z.boolean(), agent: z.boolean(), test: z.boolean() }).partial().strict().optional(),
            budgets: z
              .object({
                maxCommands: z.number().int().positive(),
                runTimeoutSeconds: z.number().int().positive(),
                maxOutputBytes: z.number().int().positive(),
                maxProcesses: z.number().int().positive(),
                maxFileBytes: z.number().int().positive(),
              })
              .partial()
              .strict()
              .optional(),
            packageCaches: z.array(z.enum(['npm', 'pnpm', 'pip', 'go'])).optional(),
            readOnlyPaths: z.array(z.string()).optional(),
            egressHosts: z.array(z.string()).optional(),
          })
          .strict()
          .optional(),
        secrets: z
          .array(z.object({ name: z.string(), phases: z.array(z.enum(['install', 'agent', 'test', 'preview'])).min(1), fromEnv: z.string() }).strict())
          .default([]),
        testReports: z.array(z.string()).optional(),
        preview: z
          .object({
            provider: z.enum(['local', 'command']).optional(),
            command: z.string(),
            aliasCommand: z.string().optional(),
            healthPath: z.string().optional(),
            readyTimeoutSeconds: z.number().int().positive().optional(),
            ttlSeconds: z.number().int().positive().optional(),
          })
          .strict()
          .optional(),
        pullRequest: z
          .object({
            provider: z.enum(['git', 'github', 'gitlab', 'none']).optional(),
            draft: z.boolean().optional(),
            labels: z.array(z.string()).optional(),
            reviewers: z.array(z.string()).optional(),
            baseBranch: z.string().optional(),
            tokenFromEnv: z.string().optional(),
            apiUrl: z.string().optional(),
            repository: z.string().optional(),
          })
          .strict()
          .optional(),
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
