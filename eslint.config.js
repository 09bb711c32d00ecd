// @ts-check
/**
 * ESLint flat config. Type-aware typescript-eslint rules for the TypeScript, import cycles for all
 * code, and the import rules of docs/ARCHITECTURE.md ("Packages and what may import what") as lint
 * rules, so a change that breaks the layout fails `make lint`.
 */
import importX, { createNodeResolver } from 'eslint-plugin-import-x';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const ARCH = 'docs/ARCHITECTURE.md, "Packages and what may import what"';

/** Production source: every package's and service's src/ (tests, bench, examples and tooling are not). */
const SRC = ['packages/*/src/**', 'services/*/src/**'];
const WORKFLOWS_SRC = 'services/workflows/src/**';
const RUNTIME_SRC = 'services/workflows-runtime/src/**';
const CONFIG_SRC = 'packages/config/src/**';
const AGENT_SRC = 'packages/agent/src/**';

/** A package that a scope may not import. */
const ban = (name, message) => ({ name, message });
const NO_DEVSTACK = ban('@ameide/devstack', `only tests and bench import @ameide/devstack; production processes never need it (${ARCH}, rule 6)`);
const NO_DB = ban('@ameide/db', `only the workflow service (services/workflows) touches Postgres through @ameide/db (${ARCH}, rule 4)`);
const NO_CLIENT = ban(
  '@temporalio/client',
  `only the workflow service (services/workflows) uses @temporalio/client, and the worker's warm-up.ts to start its warm-up (${ARCH}, rule 4)`,
);
const NO_RUNTIME = ban('@ameide/workflows-runtime', `services never import each other: the service reaches the worker only through Temporal (${ARCH}, rule 1)`);
const NO_SERVICE = ban('@ameide/workflows', `services never import each other: the worker reaches the service only through the API (${ARCH}, rule 1)`);
const NO_AGENT = ban(
  '@ameide/agent',
  `nothing imports @ameide/agent: the worker runs its bundle (dist/agent.mjs) as a sandboxed process and reads its output as data (${ARCH})`,
);
/** What the LangChain agent runtime may not import: every workspace package but @ameide/config (it runs alone in the sandbox). */
const AGENT_MESSAGE = `packages/agent imports only @ameide/config among the workspace packages: it is bundled into one file that runs alone in the sandbox (${ARCH})`;
const AGENT_ONLY_CONFIG = ['attest', 'cli', 'contracts', 'db', 'devstack', 'sdk', 'telemetry', 'temporal', 'workflows', 'workflows-runtime'].map((p) =>
  ban(`@ameide/${p}`, AGENT_MESSAGE),
);
const ENV_MESSAGE = `only @ameide/config reads process.env; take a config object or an Env instead (${ARCH}, rule 3)`;
const NO_ENV_IMPORT = [
  { name: 'node:process', importNames: ['env'], message: ENV_MESSAGE },
  { name: 'process', importNames: ['env'], message: ENV_MESSAGE },
];

/** `no-restricted-imports` for a list of banned packages (with their subpaths). */
function banImports(banned, extraPaths = []) {
  return {
    'no-restricted-imports': [
      'error',
      {
        paths: [...banned, ...extraPaths],
        patterns: banned.map((b) => ({ group: [`${b.name}/*`], message: b.message })),
      },
    ],
  };
}
/** `no-restricted-syntax` entries for `import()` of the banned packages. */
function dynamicImportBans(banned) {
  // esquery regexes cannot contain a slash, hence \u002f.
  const slash = '\\u002f';
  return banned.map((b) => ({
    selector: `ImportExpression[source.value=/^${b.name.replaceAll('/', slash)}(${slash}|$)/]`,
    message: b.message,
  }));
}

/**
 * Rule 2: the workflow code (workflows.ts and workflow/**) runs in Temporal's deterministic sandbox.
 * It imports @ameide/temporal, @temporalio/workflow, other workflow code, and only types of the activities.
 */
const WORKFLOW_MESSAGE = `workflow code (workflows.ts, workflow/**) imports only @ameide/temporal, @temporalio/workflow, other workflow code and \`import type\` of the activities: it is bundled into Temporal's deterministic sandbox (no I/O, no Node built-ins, no config) (${ARCH}, rule 2)`;
const WORKFLOW_PACKAGES = ":not([source.value='@ameide/temporal']):not([source.value='@temporalio/workflow'])";
/** The restricted-syntax rules for workflow code at one depth: `code` is its own relative imports, `activities` the activities' index from there. */
function workflowSyntax(code, activities) {
  const allowed = `${WORKFLOW_PACKAGES}:not([source.value=${code}])`;
  return [
    { selector: `ImportDeclaration${allowed}:not([importKind='type'][source.value='${activities}'])`, message: WORKFLOW_MESSAGE },
    { selector: `ExportNamedDeclaration[source]${allowed}, ExportAllDeclaration${allowed}`, message: WORKFLOW_MESSAGE },
    { selector: "ImportExpression, TSImportEqualsDeclaration, CallExpression[callee.name='require']", message: WORKFLOW_MESSAGE },
  ];
}
// esquery regexes cannot contain a slash, hence \u002f.
const WORKFLOW_CODE = [
  { files: ['services/workflows-runtime/src/workflows.ts'], syntax: workflowSyntax('/^\\.\\u002fworkflow\\u002f/', './activities/index.js') },
  { files: ['services/workflows-runtime/src/workflow/*.ts'], syntax: workflowSyntax('/^\\.\\u002f/', '../activities/index.js') },
  { files: ['services/workflows-runtime/src/workflow/phases/*.ts'], syntax: workflowSyntax('/^\\.\\.?\\u002f[a-z-]+\\.js$/', '../../activities/index.js') },
];

const SRC_BANS = [NO_DEVSTACK, NO_DB, NO_CLIENT, NO_AGENT];
const WORKFLOWS_BANS = [NO_DEVSTACK, NO_RUNTIME, NO_AGENT];
const RUNTIME_BANS = [NO_DEVSTACK, NO_DB, NO_CLIENT, NO_SERVICE, NO_AGENT];
const AGENT_BANS = [...AGENT_ONLY_CONFIG, NO_CLIENT, NO_AGENT];

export default defineConfig(
  {
    name: 'ameide/ignores',
    ignores: ['packages/contracts/src/gen/**', '**/node_modules/**', '.tools/**', '.ameide/**', '**/dist/**'],
  },
  {
    name: 'ameide/all',
    files: ['**/*.{ts,mts,cts,js,mjs,cjs}'],
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: { ecmaVersion: 'latest', sourceType: 'module' },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.mts', '.cts'] },
      // NodeNext: `./x.js` in the source is `./x.ts` on disk; workspace packages export ./src/index.ts.
      'import-x/resolver-next': [
        createNodeResolver({
          extensions: ['.ts', '.mts', '.cts', '.mjs', '.cjs', '.js', '.json', '.node'],
          extensionAlias: { '.js': ['.ts', '.js'], '.mjs': ['.mts', '.mjs'], '.cjs': ['.cts', '.cjs'] },
        }),
      ],
    },
    rules: {
      'import-x/no-cycle': 'error',
    },
  },
  {
    name: 'ameide/typescript',
    files: ['**/*.{ts,mts,cts}'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        // tsconfig.json covers the code; the drizzle-kit config sits outside its include.
        projectService: { allowDefaultProject: ['packages/db/drizzle.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      // With verbatimModuleSyntax `import { type A }` keeps a side-effect import; `import type` erases it.
      '@typescript-eslint/no-import-type-side-effects': 'error',
    },
  },
  {
    name: 'ameide/architecture/src',
    files: SRC,
    rules: {
      ...banImports(SRC_BANS, NO_ENV_IMPORT),
      'no-restricted-syntax': ['error', ...dynamicImportBans(SRC_BANS)],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: ENV_MESSAGE }],
    },
  },
  {
    name: 'ameide/architecture/config',
    files: [CONFIG_SRC],
    rules: {
      ...banImports(SRC_BANS),
      'no-restricted-properties': 'off',
    },
  },
  {
    name: 'ameide/architecture/agent',
    files: [AGENT_SRC],
    rules: {
      ...banImports(AGENT_BANS, NO_ENV_IMPORT),
      'no-restricted-syntax': ['error', ...dynamicImportBans(AGENT_BANS)],
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: import.meta.dirname,
          zones: [
            { target: './packages/agent/src', from: './services', message: AGENT_MESSAGE },
            { target: './packages/agent/src', from: './packages', except: ['./agent', './config'], message: AGENT_MESSAGE },
          ],
        },
      ],
    },
  },
  {
    name: 'ameide/architecture/workflows',
    files: [WORKFLOWS_SRC],
    rules: {
      ...banImports(WORKFLOWS_BANS, NO_ENV_IMPORT),
      'no-restricted-syntax': ['error', ...dynamicImportBans(WORKFLOWS_BANS)],
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: import.meta.dirname,
          zones: [
            { target: './services/workflows/src', from: './services/workflows-runtime', message: NO_RUNTIME.message },
            { target: './services/workflows/src', from: './packages/agent', message: NO_AGENT.message },
          ],
        },
      ],
    },
  },
  {
    name: 'ameide/architecture/workflows-runtime',
    files: [RUNTIME_SRC],
    rules: {
      ...banImports(RUNTIME_BANS, NO_ENV_IMPORT),
      'no-restricted-syntax': ['error', ...dynamicImportBans(RUNTIME_BANS)],
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: import.meta.dirname,
          zones: [
            { target: './services/workflows-runtime/src', from: './services/workflows', message: NO_SERVICE.message },
            { target: './services/workflows-runtime/src', from: './packages/agent', message: NO_AGENT.message },
          ],
        },
      ],
    },
  },
  {
    // The worker's one use of @temporalio/client: starting its own warm-up workflow (never a run).
    name: 'ameide/architecture/worker-warm-up',
    files: ['services/workflows-runtime/src/warm-up.ts'],
    rules: {
      ...banImports(
        RUNTIME_BANS.filter((b) => b !== NO_CLIENT),
        NO_ENV_IMPORT,
      ),
      'no-restricted-syntax': ['error', ...dynamicImportBans(RUNTIME_BANS.filter((b) => b !== NO_CLIENT))],
    },
  },
  ...WORKFLOW_CODE.map(({ files, syntax }) => ({
    name: 'ameide/architecture/workflow-code',
    files,
    rules: {
      'no-restricted-syntax': ['error', ...dynamicImportBans(RUNTIME_BANS), ...syntax],
    },
  })),
);
