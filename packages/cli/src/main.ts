import { loadCliConfig, runMain } from '@ameide/config';
import { ConnectError, createBacklogServiceClient, createGovernanceServiceClient, createWorkflowServiceClient } from '@ameide/sdk';
import { parseArgs, UsageError } from './args.js';
import { definitionsCommand, plansCommand, profilesCommand, runsCommand, workitemsCommand, type Output } from './commands.js';
import { evidenceCommand } from './evidence.js';
import { impedimentsCommand } from './impediments.js';
import { notificationsCommand } from './notifications.js';
import { previewsCommand } from './previews.js';
import { prsCommand } from './prs.js';

const USAGE = `usage: ameide <command>
  definitions apply -f <file.yaml>      create or update a definition
  definitions list|get <name>           show definitions            [--json]
  plans list [--work-item id] [--definition name]   show plans: version, work item and revision, trigger   [--json]
  plans get <id>                        show a plan                  [--json]
  plans approve|reject <id> [--reason r]   decide on a plan that waits for approval (approve starts its run)
  plans diff <plan> [--from N --to M] [--other <plan>]   what changed between two versions of a work item's plan (default: the one before) or two plans   [--json]
  runs start --definition <name> [--work-item <id> --title <t> --description <d> --criterion <c>… --link <url>…] [--request-id <key>] [--watch]
  runs rerun <id> [--watch]             run the same plan again: next attempt, same branch
  runs list [--status s] [--work-item id] [--definition name]        [--json]
  runs get <id>                         show a run                   [--json]
  runs watch <id> [--from N]            follow a run; exit 0 only if it completed
  runs cancel <id>                      cancel a run and kill its running command
  runs handoff <id> [--dir <path>]      restore a failed run's branch and notes (default dir ./handoff-<id8>)
  runs diff <id> [--stat]               the run's change: unified diff (coloured on a terminal unless NO_COLOR), or per-file stats   [--json]
  prs list [--work-item id] [--state open|draft|closed|merged]   pull requests, one per work branch   [--json]
  prs get <id|#number>                  show a pull request with its description   [--json]
  previews list [--work-item id] [--run id] [--state live|stopped]   runs' previews and their URLs   [--json]
  workitems apply -f <item.yaml>        create or update a work item revision; prints its readiness
  workitems list [--state s] [--timebox id] [--goal id] [--profile p] [--ready|--not-ready]   [--json]
  workitems get <id>                    show a work item, each Definition of Ready rule, its plan and run   [--json]
  profiles apply -f <profile.yaml>      create or update a methodology profile
  profiles list|get <name>              show profiles (built-in: scrum, safe, togaf)   [--json]
  evidence list <run> | --work-item id | --timebox id | --goal id | --artifact kind:id   checksummed evidence and signed attestations   [--json]
  evidence download <run> [--dir d]     the run's evidence files (digests checked) and attestation envelopes
  evidence verify <run> [--public-key pem] [--dir d]   check every digest and signature; exit 1 naming what failed   [--json]
  impediments list [--state open|resolved|reassigned] [--work-item id]   what automation could not finish   [--json]
  impediments get <id>                  reason, phase, run, work item, timeboxes, handoff link and restore command   [--json]
  impediments resolve <id> --resolution "…"   close it, saying what was done
  impediments reassign <id> --to <person|agent> [--note …]   to a person, or back to the agent (queues one rerun; prints its id)
  notifications list [--person p] [--unread]   the notification center (yours, or p's), newest first, and the unread count   [--json]
  notifications read <id>…|--all [--person p]   mark notifications read
  notifications watch [--person p]      print notifications, then each new one as it arrives   [--json]
  notifications subscribe --channel webhook|email|in_app [--address url|e-mail] [--secret s] [--work-item id|*] [--person p]   run notifications of a work item (default: every item)
  notifications subscriptions [--person p] [--work-item id]   list subscriptions   [--json]
  notifications unsubscribe <id>        delete a subscription
  notifications deliveries [--state pending|delivered|failed|dead_lettered] [--channel webhook|email] [--run id]   webhook and e-mail deliveries   [--json]
  notifications stats                   deliveries per channel: counts, latency p50/p95/p99   [--json]
settings: AMEIDE_API_URL, AMEIDE_TOKEN (default: the stack started by \`make up\`)`;

/** Runs one CLI invocation and returns its exit code. */
export async function cli(argv: string[], o: Output = { out: (l) => console.log(l) }): Promise<number> {
  const args = parseArgs(argv);
  const [group, sub] = args.positionals;
  if (!group || args.flags.has('help')) {
    o.out(USAGE);
    return group ? 0 : 2;
  }
  const cfg = loadCliConfig();
  const api = createWorkflowServiceClient({ baseUrl: cfg.apiUrl, token: cfg.token });
  try {
    if (group === 'definitions') return await definitionsCommand(api, sub ?? '', args, o);
    if (group === 'runs') return await runsCommand(api, sub ?? '', args, o);
    if (group === 'plans') return await plansCommand(api, sub ?? '', args, o);
    if (group === 'prs') return await prsCommand(api, sub ?? '', args, o);
    if (group === 'previews') return await previewsCommand(api, sub ?? '', args, o);
    const governance = new Map([
      ['evidence', evidenceCommand],
      ['impediments', impedimentsCommand],
      ['notifications', notificationsCommand],
    ]).get(group);
    if (governance) return await governance(createGovernanceServiceClient({ baseUrl: cfg.apiUrl, token: cfg.token }), sub ?? '', args, o);
    if (group === 'workitems' || group === 'profiles') {
      const backlog = createBacklogServiceClient({ baseUrl: cfg.apiUrl, token: cfg.token });
      return await (group === 'workitems' ? workitemsCommand : profilesCommand)(backlog, sub ?? '', args, o);
    }
  } catch (err) {
    if (err instanceof ConnectError) throw Object.assign(new Error(`${err.rawMessage} (${codeName(err)})`), { expected: true });
    throw err;
  }
  throw new UsageError(`unknown command "${group}"\n${USAGE}`);
}

function codeName(err: ConnectError): string {
  const names: Record<number, string> = {
    3: 'invalid argument',
    5: 'not found',
    6: 'already exists',
    7: 'permission denied',
    9: 'failed precondition',
    14: 'unavailable',
    16: 'unauthenticated',
  };
  return names[err.code] ?? `code ${err.code}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runMain(async () => {
    process.exitCode = await cli(process.argv.slice(2));
  });
}
