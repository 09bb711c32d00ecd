import { SLSA_PROVENANCE_TYPE, TEST_RESULT_TYPE } from './statement.js';

/** What a coding-agent run's SLSA provenance records (see `slsaProvenance`). */
export interface ProvenanceInput {
  /** The worker that ran it, e.g. `https://ameide.dev/worker/<identity>`. */
  builderId: string;
  /** The worker's version. */
  builderVersion: string;
  /** e.g. `https://ameide.dev/coding-agent-run/v1`. */
  buildType: string;
  /** The plan: id, version, definition name and version, work items. */
  externalParameters: Record<string, unknown>;
  /** Tool versions and the like. */
  internalParameters?: Record<string, unknown>;
  /** The repository at its base commit: `{ uri, digest: { gitCommit: sha } }`. */
  resolvedDependencies: { uri: string; digest: Record<string, string>; name?: string }[];
  invocationId: string;
  /** RFC 3339 timestamps. */
  startedOn?: string;
  finishedOn?: string;
  byproducts?: { name: string; uri?: string; digest?: Record<string, string>; mediaType?: string }[];
}

/** The key of the worker's version in `runDetails.builder.version` (a map of component to version). */
export const BUILDER_VERSION_KEY = 'ameide-worker';

/**
 * A SLSA Provenance v1 predicate (https://slsa.dev/provenance/v1): `buildDefinition` (buildType,
 * externalParameters, internalParameters, resolvedDependencies) and `runDetails` (builder with its
 * id and version, metadata with the invocation id and times, byproducts). Unset optional fields are
 * left out.
 */
export function slsaProvenance(i: ProvenanceInput): { predicateType: string; predicate: Record<string, unknown> } {
  return {
    predicateType: SLSA_PROVENANCE_TYPE,
    predicate: {
      buildDefinition: defined({
        buildType: i.buildType,
        externalParameters: i.externalParameters,
        internalParameters: i.internalParameters,
        resolvedDependencies: i.resolvedDependencies.map((d) => defined({ uri: d.uri, digest: d.digest, name: d.name })),
      }),
      runDetails: defined({
        builder: { id: i.builderId, version: { [BUILDER_VERSION_KEY]: i.builderVersion } },
        metadata: defined({ invocationId: i.invocationId, startedOn: i.startedOn, finishedOn: i.finishedOn }),
        byproducts: i.byproducts?.map((b) => defined({ name: b.name, uri: b.uri, digest: b.digest, mediaType: b.mediaType })),
      }),
    },
  };
}

/** What a test run's in-toto Test Result records (see `testResult`). */
export interface TestResultInput {
  result: 'PASSED' | 'WARNED' | 'FAILED';
  /** The configuration the tests ran with (ResourceDescriptors: the definition, the test command's files…). */
  configuration: { name: string; uri?: string; digest?: Record<string, string> }[];
  /** A link to the test run, when there is one. */
  url?: string;
  passedTests: string[];
  warnedTests: string[];
  failedTests: string[];
}

/**
 * An in-toto Test Result v0.1 predicate (in-toto attestation spec, spec/predicates/test-result.md):
 * `result`, `configuration`, `url` when set, and the names of the passed, warned and failed tests.
 * Its subjects are the artifacts that were tested.
 */
export function testResult(i: TestResultInput): { predicateType: string; predicate: Record<string, unknown> } {
  return {
    predicateType: TEST_RESULT_TYPE,
    predicate: defined({
      result: i.result,
      configuration: i.configuration.map((c) => defined({ name: c.name, uri: c.uri, digest: c.digest })),
      url: i.url,
      passedTests: i.passedTests,
      warnedTests: i.warnedTests,
      failedTests: i.failedTests,
    }),
  };
}

/** The object without its undefined fields. */
function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
