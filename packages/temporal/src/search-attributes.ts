import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Typed search attributes every coding-agent run carries, kept current by the workflow. */
export const SA = {
  tenantId: defineSearchAttributeKey('AmeideTenantId', SearchAttributeType.KEYWORD),
  workItemIds: defineSearchAttributeKey('AmeideWorkItemIds', SearchAttributeType.KEYWORD_LIST),
  timeboxIds: defineSearchAttributeKey('AmeideTimeboxIds', SearchAttributeType.KEYWORD_LIST),
  goalIds: defineSearchAttributeKey('AmeideGoalIds', SearchAttributeType.KEYWORD_LIST),
  /**
   * Text, not KeywordList: Temporal's SQL visibility stores at most three KeywordList attributes, and
   * work items, timeboxes and goals are queried more often. Ids are space-separated, so
   * `AmeideElementIds = 'el-7'` matches a run that carries el-7 among others.
   */
  elementIds: defineSearchAttributeKey('AmeideElementIds', SearchAttributeType.TEXT),
  definitionId: defineSearchAttributeKey('AmeideDefinitionId', SearchAttributeType.KEYWORD),
  /** The definition's name as the plan snapshot has it (readable where the id is not). */
  definitionName: defineSearchAttributeKey('AmeideDefinitionName', SearchAttributeType.KEYWORD),
  trigger: defineSearchAttributeKey('AmeideTrigger', SearchAttributeType.KEYWORD),
  /** The methodology profile of the run's work (scrum, safe, togaf, a tenant's own), when it has one. */
  profile: defineSearchAttributeKey('AmeideProfile', SearchAttributeType.KEYWORD),
  runStatus: defineSearchAttributeKey('AmeideRunStatus', SearchAttributeType.KEYWORD),
  runPhase: defineSearchAttributeKey('AmeideRunPhase', SearchAttributeType.KEYWORD),
} as const;

/** `name=Type` pairs for `temporal server start-dev --search-attribute` and operator registration. */
export const SEARCH_ATTRIBUTE_REGISTRATIONS: ReadonlyArray<readonly [string, 'Keyword' | 'KeywordList' | 'Text']> = [
  ['AmeideTenantId', 'Keyword'],
  ['AmeideWorkItemIds', 'KeywordList'],
  ['AmeideTimeboxIds', 'KeywordList'],
  ['AmeideGoalIds', 'KeywordList'],
  ['AmeideElementIds', 'Text'],
  ['AmeideDefinitionId', 'Keyword'],
  ['AmeideDefinitionName', 'Keyword'],
  ['AmeideTrigger', 'Keyword'],
  ['AmeideProfile', 'Keyword'],
  ['AmeideRunStatus', 'Keyword'],
  ['AmeideRunPhase', 'Keyword'],
];
