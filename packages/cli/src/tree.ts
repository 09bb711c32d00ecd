import { Option, type Command } from 'commander';
import { commandLineError, examples, group, repeatable, RUN_STATUSES, wholeNumber, withLimit, withOutput, type OutputOptions } from './args.js';
import type { StartOptions } from './commands.js';
import type { Ctx } from './context.js';
import type { SelectorOptions } from './evidence.js';

/**
 * The command tree: every command, its arguments, flags, description and examples. It loads nothing
 * but commander: each command's module (which imports the API clients, the protobuf code and the
 * settings) is loaded when the command runs, so that help, --version and completion start fast.
 */

/** The command modules, loaded when one of their commands runs. */
const load = {
  commands: () => import('./commands.js'),
  prs: () => import('./prs.js'),
  previews: () => import('./previews.js'),
  evidence: () => import('./evidence.js'),
  impediments: () => import('./impediments.js'),
  notifications: () => import('./notifications.js'),
  login: () => import('./login.js'),
};

/** A command's action: readies the context, loads the command's module and runs it; the exit code it returns is the command's. */
export function lazy<M, A extends unknown[]>(
  ctx: Ctx,
  loadModule: () => Promise<M>,
  run: (m: M, ...args: A) => Promise<number> | number,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    await ctx.ready();
    const m = await loadModule();
    ctx.exitCode = await run(m, ...args);
  };
}

export function registerDefinitions(program: Command, ctx: Ctx): void {
  const defs = group(program, 'definitions', 'repositories and how to install, change and test them');
  examples(defs, 'ameide definitions apply -f my-repo.yaml', 'ameide definitions list');

  examples(
    defs
      .command('apply')
      .description('create or update a definition from its file (docs/definitions.md); unchanged when it is the same')
      .requiredOption('-f, --file <path>', 'the definition file (YAML or JSON)'),
    'ameide definitions apply -f my-repo.yaml',
  )
    .addOption(new Option('-o, --output <format>', 'print json or yaml instead of text').choices(['json', 'yaml']))
    .option('--json', 'same as -o json')
    .action(lazy(ctx, load.commands, (m, opts: { file: string } & OutputOptions) => m.definitionsApply(ctx, opts)));

  examples(
    withLimit(withOutput(defs.command('list').description('list definitions: name, version, repository, last change'))).option(
      '--deleted',
      'also list deleted definitions',
    ),
    'ameide definitions list -o yaml',
    'ameide definitions list --deleted',
  ).action(lazy(ctx, load.commands, (m, opts: { limit?: number; deleted?: boolean } & OutputOptions) => m.definitionsList(ctx, opts)));

  examples(
    withOutput(defs.command('get').description('show a definition (its stored spec)').argument('<name>', 'definition name or id')),
    'ameide definitions get my-repo -o yaml',
  ).action(lazy(ctx, load.commands, (m, name: string, opts: OutputOptions) => m.definitionsGet(ctx, name, opts)));

  examples(
    withOutput(
      defs
        .command('delete')
        .description('delete a definition: it leaves the lists and frees its name; plans and runs made from it are kept')
        .argument('<name>', 'definition name, id or short id'),
    ),
    'ameide definitions delete my-repo',
  ).action(lazy(ctx, load.commands, (m, name: string, opts: OutputOptions) => m.definitionsDelete(ctx, name, opts)));
}

export function registerRuns(program: Command, ctx: Ctx): Command {
  const runs = group(program, 'runs', 'start, follow and inspect runs of a definition');
  examples(
    runs,
    'ameide runs start --definition my-repo --work-item PROJ-12 --title "Add a multiply function" --watch',
    'ameide runs list --failed',
    'ameide runs watch 3f2a9c1e',
  );

  examples(
    withOutput(
      runs
        .command('start')
        .description('start a run of a definition, for a work item given on the command line (or none)')
        .requiredOption('--definition <name>', 'definition name or id')
        .option('--work-item <id>', 'the work item this run carries out')
        .option('--title <title>', "the work item's title")
        .option('--description <text>', "the work item's description")
        .addOption(repeatable('--criterion <text>', 'an acceptance criterion (repeatable)'))
        .addOption(repeatable('--link <url>', 'a context link (repeatable)'))
        .option('--request-id <key>', 'idempotency key: a start sent again with it returns the first run (default: a new one)')
        .option('--watch', 'follow the run to its end; exit 0 only if it completed'),
      ['json', 'yaml'],
    ),
    'ameide runs start --definition my-repo --work-item PROJ-12 --title "Add a multiply function" --criterion "multiply(6, 7) returns 42" --watch',
  ).action(lazy(ctx, load.commands, (m, opts: StartOptions) => m.runsStart(ctx, opts)));

  examples(
    withOutput(
      runs
        .command('rerun')
        .description("run a run's plan again: the next attempt, on the same branch (it queues behind the branch's running run)")
        .argument('<run>', 'run id')
        .option('--request-id <key>', 'idempotency key (default: a new one)')
        .option('--watch', 'follow the new run to its end; exit 0 only if it completed'),
      ['json', 'yaml'],
    ),
    'ameide runs rerun 3f2a9c1e --watch',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions & { requestId?: string; watch?: boolean }) => m.runsRerun(ctx, id, opts)));

  examples(
    withLimit(
      withOutput(
        runs
          .command('list')
          .description('list runs, newest first: id, status, definition, work item, title, when it started and how long it took')
          .addOption(repeatable('--status <status>', `only runs in this status: ${RUN_STATUSES.join(', ')} (repeatable, or comma-separated)`))
          .option('--failed', 'only runs that failed: failed and handed_off (a handed-off run failed and left a handoff bundle)')
          .option('--work-item <id>', 'only runs of this work item')
          .option('--definition <name>', 'only runs of this definition (name or id)')
          .option('--page-token <token>', 'the next page: the token the previous list printed'),
      ),
    ),
    'ameide runs list',
    'ameide runs list --failed --definition my-repo',
    'ameide runs list --status running,queued -o json',
  ).action(
    lazy(
      ctx,
      load.commands,
      (m, opts: OutputOptions & { status?: string[]; failed?: boolean; workItem?: string; definition?: string; limit?: number; pageToken?: string }) =>
        m.runsList(ctx, opts),
    ),
  );

  examples(
    withOutput(
      runs
        .command('get')
        .description('show a run: status, each phase, branch, diff, tests, preview, pull request, Definition of Done')
        .argument('<run>', 'run id'),
    ),
    'ameide runs get 3f2a9c1e',
    'ameide runs get 3f2a9c1e -o json',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions) => m.runsGet(ctx, id, opts)));

  examples(
    withOutput(
      runs
        .command('watch')
        .description('follow a run: print each status update as it happens; exit 0 only if the run completed (Ctrl-C stops watching, not the run)')
        .argument('<run>', 'run id')
        .option('--from <n>', 'start at this update sequence number (default 0: from the start)', (v: string) => {
          if (!/^\d+$/.test(v)) throw commandLineError(`--from ${v}: must be a sequence number`);
          return v;
        }),
      ['json'],
    ),
    'ameide runs watch 3f2a9c1e',
    'ameide runs watch 3f2a9c1e --from 5 -o json   # JSON lines',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions & { from?: string }) => m.runsWatch(ctx, id, opts)));

  examples(
    runs
      .command('logs')
      .description("print what the run's commands (install, agent, test) printed, as the service keeps it (the newest part of each phase); -f follows it live")
      .argument('<run>', 'run id')
      .option('--phase <phase>', 'only this phase: install, agent or test')
      .option('-f, --follow', 'keep printing new output until the run (or the phase) has finished'),
    'ameide runs logs 3f2a9c1e --phase agent',
    'ameide runs logs 3f2a9c1e -f',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: { phase?: string; follow?: boolean }) => m.runsLogsCommand(ctx, id, opts)));

  examples(
    runs
      .command('open')
      .description("print the Temporal Web UI page of the run's workflow (AMEIDE_TEMPORAL_UI_URL, else the make up stack's)")
      .argument('<run>', 'run id'),
    'ameide runs open 3f2a9c',
    'xdg-open "$(ameide runs open 3f2a9c)"',
  ).action(lazy(ctx, load.commands, (m, id: string) => m.runsOpenCommand(ctx, id)));

  examples(
    withOutput(
      runs
        .command('cancel')
        .description('cancel a run: its running command is killed, its work handed off')
        .argument('<run>', 'run id')
        .option('--reason <text>', 'why (recorded with the run)'),
      ['json', 'yaml'],
    ),
    'ameide runs cancel 3f2a9c1e --reason "wrong work item"',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions & { reason?: string }) => m.runsCancel(ctx, id, opts)));

  examples(
    withOutput(
      runs
        .command('handoff')
        .description("restore a handed-off run's branch and its follow-up note (.codex/followup.md) into a fresh clone")
        .argument('<run>', 'run id')
        .option('--dir <path>', 'where to clone (default ./handoff-<run id, 8 characters>)'),
      ['json', 'yaml'],
    ),
    'ameide runs handoff 3f2a9c1e',
    'ameide runs handoff 3f2a9c1e --dir ../take-over',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions & { dir?: string }) => m.runsHandoff(ctx, id, opts)));

  examples(
    withOutput(
      runs
        .command('diff')
        .description("the run's change as it pushed it: a unified diff (coloured on a terminal unless NO_COLOR), or per-file stats")
        .argument('<run>', 'run id')
        .option('--stat', 'one line per file and the totals, as git diff --stat'),
    ),
    'ameide runs diff 3f2a9c1e',
    'ameide runs diff 3f2a9c1e --stat',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions & { stat?: boolean }) => m.runsDiffCommand(ctx, id, opts)));
  return runs;
}

export function registerPlans(program: Command, ctx: Ctx): void {
  const plans = group(program, 'plans', 'snapshots of a definition with their work items: what a run executes');
  examples(plans, 'ameide plans list --work-item PROJ-12', 'ameide plans diff 8c1d2e3f');

  examples(
    withLimit(
      withOutput(
        plans
          .command('list')
          .description('list plans: id, version, definition, work item and revision, trigger, when made')
          .option('--work-item <id>', "only this work item's plans")
          .option('--definition <name>', 'only plans of this definition'),
      ),
    ),
    'ameide plans list --work-item PROJ-12',
  ).action(lazy(ctx, load.commands, (m, opts: OutputOptions & { workItem?: string; definition?: string; limit?: number }) => m.plansList(ctx, opts)));

  examples(
    withOutput(
      plans.command('get').description('show a plan: version, definition, work item, trigger, approval, the work it covers').argument('<plan>', 'plan id'),
    ),
    'ameide plans get 8c1d2e3f',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions) => m.plansGet(ctx, id, opts)));

  const version = (flag: string) => wholeNumber(flag, 1, 0xffffffff, 'a plan version');
  examples(
    withOutput(
      plans
        .command('diff')
        .description("what changed between two versions of a work item's plan (default: against the version before), or between two plans")
        .argument('<plan>', 'plan id')
        .option('--from <n>', 'compare from this version of the work item’s plan', version('--from'))
        .option('--to <n>', 'compare to this version', version('--to'))
        .option('--other <plan>', 'compare with this plan instead'),
    ),
    'ameide plans diff 8c1d2e3f',
    'ameide plans diff 8c1d2e3f --from 1 --to 3',
    'ameide plans diff 8c1d2e3f --other 4b5a6c7d',
  ).action(
    lazy(ctx, load.commands, (m, planId: string, opts: OutputOptions & { from?: number; to?: number; other?: string }) => m.plansDiff(ctx, planId, opts)),
  );

  for (const decision of ['approve', 'reject'] as const)
    examples(
      withOutput(
        plans
          .command(decision)
          .description(
            decision === 'approve' ? 'approve a plan that waits for approval: its run starts' : 'reject a plan that waits for approval: it will not run',
          )
          .argument('<plan>', 'plan id')
          .option('--reason <text>', 'why (recorded with the decision)'),
        ['json', 'yaml'],
      ),
      `ameide plans ${decision} 8c1d2e3f --reason "${decision === 'approve' ? 'scope agreed' : 'needs a design first'}"`,
    ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions & { reason?: string }) => m.plansDecide(ctx, decision, id, opts)));
}

export function registerWorkItems(program: Command, ctx: Ctx): void {
  const items = group(program, 'workitems', 'backlog work items: their revisions, Definition of Ready, and the run automation started');
  examples(items, 'ameide workitems apply -f item.yaml', 'ameide workitems list --not-ready');

  examples(
    withOutput(
      items
        .command('apply')
        .description('create or update a work item revision from its file; prints whether it is ready, rule by rule')
        .requiredOption('-f, --file <path>', 'the work item file (an UpsertWorkItemRequest in YAML or JSON)'),
      ['json', 'yaml'],
    ),
    'ameide workitems apply -f item.yaml',
  ).action(lazy(ctx, load.commands, (m, opts: OutputOptions & { file: string }) => m.workitemsApply(ctx, opts)));

  examples(
    withLimit(
      withOutput(
        items
          .command('list')
          .description('list work items: id, revision, state, profile, ready, run, title')
          .option('--state <state>', 'only items in this state (proposed, backlog, ready, in_progress, done, removed)')
          .option('--timebox <id>', 'only items of this timebox (sprint, PI, …)')
          .option('--goal <id>', 'only items serving this goal')
          .option('--profile <name>', 'only items of this methodology profile')
          .option('--ready', 'only items whose Definition of Ready is met')
          .option('--not-ready', 'only items whose Definition of Ready is not met'),
      ),
    ),
    'ameide workitems list --timebox sprint-7 --not-ready',
  ).action(
    lazy(
      ctx,
      load.commands,
      (m, opts: OutputOptions & { state?: string; timebox?: string; goal?: string; profile?: string; ready?: boolean; notReady?: boolean; limit?: number }) =>
        m.workitemsList(ctx, opts),
    ),
  );

  examples(
    withOutput(
      items.command('get').description('show a work item: its spec, each Definition of Ready rule, its plan and run').argument('<id>', 'work item id'),
    ),
    'ameide workitems get PROJ-12',
  ).action(lazy(ctx, load.commands, (m, id: string, opts: OutputOptions) => m.workitemsGet(ctx, id, opts)));
}

export function registerProfiles(program: Command, ctx: Ctx): void {
  const profiles = group(program, 'profiles', 'methodology profiles: when work items run, their Definition of Ready and Done (built-in: scrum, safe, togaf)');
  examples(profiles, 'ameide profiles list', 'ameide profiles apply -f kanban.yaml');

  examples(
    withOutput(
      profiles
        .command('apply')
        .description('create or update a methodology profile from its file')
        .requiredOption('-f, --file <path>', 'the profile file (YAML or JSON)'),
      ['json', 'yaml'],
    ),
    'ameide profiles apply -f kanban.yaml',
  ).action(lazy(ctx, load.commands, (m, opts: OutputOptions & { file: string }) => m.profilesApply(ctx, opts)));

  examples(withOutput(profiles.command('list').description('list profiles: name, version (or built-in), description')), 'ameide profiles list').action(
    lazy(ctx, load.commands, (m, opts: OutputOptions) => m.profilesList(ctx, opts)),
  );

  examples(
    withOutput(
      profiles
        .command('get')
        .description('show a profile: trigger state, Definition of Ready and Done rules, evidence targets')
        .argument('<name>', 'profile name'),
    ),
    'ameide profiles get scrum',
  ).action(lazy(ctx, load.commands, (m, name: string, opts: OutputOptions) => m.profilesGet(ctx, name, opts)));
}

/** `ameide prs list|get`: the one pull request of each work branch, as every rerun left it. */
export function registerPrs(program: Command, ctx: Ctx): void {
  const prs = program.command('prs').description('pull requests: one per work branch, updated by every rerun');
  examples(prs, 'ameide prs list --state open', 'ameide prs get "#3"');

  examples(
    withLimit(
      withOutput(
        prs
          .command('list')
          .description('list pull requests: number, state, provider, work item, branch, runs, last update, title')
          .option('--work-item <id>', "only this work item's pull request")
          .addOption(new Option('--state <state>', 'only pull requests in this state').choices(['open', 'draft', 'closed', 'merged'])),
      ),
    ),
    'ameide prs list --work-item PROJ-12',
  ).action(lazy(ctx, load.prs, (m, opts: OutputOptions & { workItem?: string; state?: string; limit?: number }) => m.prsList(ctx, opts)));

  examples(
    withOutput(prs.command('get').description('show a pull request with its description').argument('<pr>', 'pull request id or #number')),
    'ameide prs get "#3"',
  ).action(lazy(ctx, load.prs, (m, id: string, opts: OutputOptions) => m.prsGet(ctx, id, opts)));
}

/** `ameide previews list`: runs' previews, live and stopped, with their URLs. */
export function registerPreviews(program: Command, ctx: Ctx): void {
  const previews = program.command('previews').description("runs' previews: the running change behind the preview router");
  examples(previews, 'ameide previews list --work-item PROJ-12');

  examples(
    withLimit(
      withOutput(
        previews
          .command('list')
          .description('list previews: run, work item, provider, state (live since, or stopped and why), URL, and the alias when it points here')
          .option('--work-item <id>', "only this work item's previews")
          .option('--run <id>', "only this run's preview")
          .addOption(new Option('--state <state>', 'only live or only stopped previews').choices(['live', 'stopped'])),
      ),
    ),
    'ameide previews list --work-item PROJ-12 --state live',
  ).action(
    lazy(ctx, load.previews, (m, opts: OutputOptions & { workItem?: string; run?: string; state?: string; limit?: number }) => m.previewsList(ctx, opts)),
  );
}

/** `ameide evidence list|download|verify`: a run's checksummed evidence and its signed attestations. */
export function registerEvidence(program: Command, ctx: Ctx): void {
  const evidence = program.command('evidence').description("runs' checksummed evidence files and signed in-toto attestations");
  examples(evidence, 'ameide evidence verify 3f2a9c1e', 'ameide evidence list --artifact increment:SPRINT-7');

  examples(
    withLimit(
      withOutput(
        evidence
          .command('list')
          .description('list evidence and attestations of a run, or of everything a work item, timebox, goal or methodology artifact collected')
          .argument('[run]', 'run id')
          .option('--work-item <id>', "a work item's evidence")
          .option('--timebox <id>', "a timebox's (sprint, PI) evidence")
          .option('--goal <id>', "a goal's evidence")
          .option('--artifact <kind:id>', 'what is attached to a methodology artifact, e.g. increment:SPRINT-7'),
      ),
    ),
    'ameide evidence list 3f2a9c1e',
    'ameide evidence list --artifact increment:SPRINT-7 -o yaml',
  ).action(
    lazy(ctx, load.evidence, (m, run: string | undefined, opts: OutputOptions & SelectorOptions & { limit?: number }) => m.evidenceList(ctx, run, opts)),
  );

  examples(
    evidence
      .command('download')
      .description("download a run's evidence files (each checked against its digest) and its attestation envelopes")
      .argument('<run>', 'run id')
      .option('--dir <path>', 'where to put them (default ./evidence-<run id, 8 characters>)'),
    'ameide evidence download 3f2a9c1e --dir ./evidence',
  ).action(lazy(ctx, load.evidence, (m, runId: string, opts: { dir?: string }) => m.evidenceDownload(ctx, runId, opts)));

  examples(
    withOutput(
      evidence
        .command('verify')
        .description("check every evidence file's digest and every attestation's signature and subjects; exit 1 naming what failed")
        .argument('<run>', 'run id')
        .option('--public-key <pem>', "trust only this public key file (default: the service's published signing keys)")
        .option('--dir <path>', 'keep the downloaded files here (default: a temporary directory)'),
    ),
    'ameide evidence verify 3f2a9c1e',
    'ameide evidence verify 3f2a9c1e --public-key signing.pub.pem',
  ).action(lazy(ctx, load.evidence, (m, runId: string, opts: OutputOptions & { publicKey?: string; dir?: string }) => m.evidenceVerify(ctx, runId, opts)));
}

/** `ameide impediments list|get|resolve|reassign`: what automation could not finish, and who takes it on. */
export function registerImpediments(program: Command, ctx: Ctx): void {
  const impediments = program
    .command('impediments')
    .description('what automation could not finish (policy, budget, handoff, failure, unmet Definition of Done), and who takes it on');
  examples(impediments, 'ameide impediments list', 'ameide impediments reassign 7e1f… --to agent --note "the flaky test is fixed on main"');

  examples(
    withLimit(
      withOutput(
        impediments
          .command('list')
          .description('list impediments, newest first: id, state, cause, work item, run, assignee, raised, reason')
          .option('--state <state>', 'only open, resolved or reassigned (to the agent) impediments')
          .option('--work-item <id>', "only this work item's impediments")
          .option('--run <id>', "only this run's impediments")
          .option('--assignee <person>', 'only impediments assigned to this person'),
      ),
    ),
    'ameide impediments list --state open --work-item PROJ-12',
  ).action(
    lazy(ctx, load.impediments, (m, opts: OutputOptions & { state?: string; workItem?: string; run?: string; assignee?: string; limit?: number }) =>
      m.impedimentsList(ctx, opts),
    ),
  );

  examples(
    withOutput(
      impediments
        .command('get')
        .description('show an impediment: reason, phase, run, work item, timeboxes, handoff and the restore command')
        .argument('<id>', 'impediment id'),
    ),
    'ameide impediments get 7e1f0a2b-…',
  ).action(lazy(ctx, load.impediments, (m, id: string, opts: OutputOptions) => m.impedimentsGet(ctx, id, opts)));

  examples(
    withOutput(
      impediments
        .command('resolve')
        .description('close an impediment, saying what was done')
        .argument('<id>', 'impediment id')
        .requiredOption('--resolution <text>', 'what was done about it'),
      ['json', 'yaml'],
    ),
    'ameide impediments resolve 7e1f0a2b-… --resolution "moved the workflow change to a reviewed PR"',
  ).action(lazy(ctx, load.impediments, (m, id: string, opts: OutputOptions & { resolution: string }) => m.impedimentsResolve(ctx, id, opts)));

  examples(
    withOutput(
      impediments
        .command('reassign')
        .description('assign an impediment to a person, or hand it back to the agent (queues one rerun that is told about the previous attempt; prints its id)')
        .argument('<id>', 'impediment id')
        .requiredOption('--to <person|agent>', 'a person, or "agent"')
        .option('--note <text>', 'for the person or the agent'),
      ['json', 'yaml'],
    ),
    'ameide impediments reassign 7e1f0a2b-… --to agent --note "the flaky test is fixed on main"',
    'ameide impediments reassign 7e1f0a2b-… --to alice',
  ).action(lazy(ctx, load.impediments, (m, id: string, opts: OutputOptions & { to: string; note?: string }) => m.impedimentsReassign(ctx, id, opts)));
}

/**
 * `ameide notifications list|read|watch|subscribe|subscriptions|unsubscribe|deliveries|stats`: the
 * notification center (the caller's, or `--person`'s), subscriptions to work items' runs on a channel
 * (the notification center, a signed webhook, e-mail), webhook and e-mail deliveries (dead letters
 * too), and per-channel delivery stats.
 */
export function registerNotifications(program: Command, ctx: Ctx): void {
  const notifications = program
    .command('notifications')
    .description("the notification center, subscriptions to work items' runs (in-app, signed webhooks, e-mail), deliveries and their stats");
  examples(
    notifications,
    'ameide notifications list --unread',
    'ameide notifications subscribe --channel webhook --address https://hooks.example.com/ameide --secret "$SECRET" --work-item PROJ-12',
  );
  const person = (cmd: Command) => cmd.option('--person <person>', "someone else's (default: yours)");

  examples(
    withLimit(
      withOutput(
        person(notifications.command('list').description('the notification center, newest first, and the unread count').option('--unread', 'only unread ones')),
      ),
    ),
    'ameide notifications list --unread',
  ).action(lazy(ctx, load.notifications, (m, opts: OutputOptions & { person?: string; unread?: boolean; limit?: number }) => m.notificationsList(ctx, opts)));

  examples(
    person(notifications.command('read').description('mark notifications read').argument('[ids...]', 'notification ids').option('--all', 'every notification')),
    'ameide notifications read --all',
    'ameide notifications read 5d0c… 91aa…',
  ).action(lazy(ctx, load.notifications, (m, ids: string[], opts: { person?: string; all?: boolean }) => m.notificationsRead(ctx, ids, opts)));

  examples(
    withOutput(person(notifications.command('watch').description('print notifications, then each new one as it arrives, until interrupted')), ['json']),
    'ameide notifications watch -o json   # JSON lines',
  ).action(lazy(ctx, load.notifications, (m, opts: OutputOptions & { person?: string }) => m.notificationsWatch(ctx, opts)));

  examples(
    withOutput(
      person(
        notifications
          .command('subscribe')
          .description("subscribe to a work item's run notifications (default: every work item's) on a channel")
          .addOption(new Option('--channel <channel>', 'where notifications go').choices(['webhook', 'email', 'in_app']).makeOptionMandatory())
          .option('--address <url|e-mail>', "the webhook's URL or the e-mail address")
          .option('--secret <secret>', 'webhook signing secret (deliveries carry an HMAC signature)')
          .option('--work-item <id>', 'the work item, or * for every one', '*'),
      ),
      ['json', 'yaml'],
    ),
    'ameide notifications subscribe --channel email --address alice@example.com --work-item PROJ-12',
    'ameide notifications subscribe --channel webhook --address https://hooks.example.com/ameide --secret "$SECRET"',
  ).action(
    lazy(ctx, load.notifications, (m, opts: OutputOptions & { person?: string; channel: string; address?: string; secret?: string; workItem: string }) =>
      m.notificationsSubscribe(ctx, opts),
    ),
  );

  examples(
    withOutput(person(notifications.command('subscriptions').description('list subscriptions').option('--work-item <id>', "only this work item's"))),
    'ameide notifications subscriptions --work-item PROJ-12',
  ).action(lazy(ctx, load.notifications, (m, opts: OutputOptions & { person?: string; workItem?: string }) => m.notificationsSubscriptions(ctx, opts)));

  examples(
    notifications.command('unsubscribe').description('delete a subscription').argument('<id>', 'subscription id (notifications subscriptions lists them)'),
    'ameide notifications unsubscribe 2b6f…',
  ).action(lazy(ctx, load.notifications, (m, id: string) => m.notificationsUnsubscribe(ctx, id)));

  examples(
    withLimit(
      withOutput(
        notifications
          .command('deliveries')
          .description('webhook and e-mail deliveries: state, attempts, channel, event, run, address, last error')
          .addOption(new Option('--state <state>', 'only deliveries in this state').choices(['pending', 'delivered', 'failed', 'dead_lettered']))
          .addOption(new Option('--channel <channel>', 'only this channel').choices(['webhook', 'email']))
          .option('--run <id>', "only this run's deliveries"),
      ),
    ),
    'ameide notifications deliveries --state dead_lettered',
  ).action(
    lazy(ctx, load.notifications, (m, opts: OutputOptions & { state?: string; channel?: string; run?: string; limit?: number }) =>
      m.notificationsDeliveries(ctx, opts),
    ),
  );

  examples(
    withOutput(notifications.command('stats').description('deliveries per channel: counts and latency p50/p95/p99')),
    'ameide notifications stats',
  ).action(lazy(ctx, load.notifications, (m, opts: OutputOptions) => m.notificationsStats(ctx, opts)));
}

/** `ameide login` and `ameide context list|use|current|delete`: named APIs and their tokens, kept in the CLI's config file. */
export function registerContexts(program: Command, ctx: Ctx): void {
  examples(
    program
      .command('login')
      .description(
        'save an API and its token as a context (named by --context, default "default") and make it the current one; checks the token first, unless --no-verify. AMEIDE_API_URL and AMEIDE_TOKEN still override it',
      )
      .requiredOption('--api-url <url>', 'the workflow service, e.g. https://ameide.example.com')
      .option('--token <token>', 'the bearer token (a JWT or an API key); prefer --with-token, which keeps it out of the shell history')
      .option('--with-token', 'read the token from standard input')
      .option('--no-verify', 'save without calling the API'),
    'ameide login --api-url https://ameide.example.com --with-token < token.txt',
    'ameide login --api-url http://127.0.0.1:8080 --token "$TOKEN" --context local',
  ).action(lazy(ctx, load.login, (m, opts: { apiUrl: string; token?: string; withToken?: boolean; verify: boolean }) => m.login(ctx, opts)));

  const contexts = program.command('context').description('saved APIs and tokens (ameide login adds them): list them, pick the current one');
  examples(contexts, 'ameide context list', 'ameide context use staging');

  examples(
    withOutput(contexts.command('list').description('list saved contexts; * marks the current one (tokens are not shown)')),
    'ameide context list',
  ).action(lazy(ctx, load.login, (m, opts: OutputOptions) => m.contextList(ctx, opts)));

  examples(contexts.command('use').description('make a saved context the current one').argument('<name>', 'context name'), 'ameide context use staging').action(
    lazy(ctx, load.login, (m, name: string) => m.contextUse(ctx, name)),
  );

  examples(withOutput(contexts.command('current').description('the current context and its API (exit 1 when there is none)')), 'ameide context current').action(
    lazy(ctx, load.login, (m, opts: OutputOptions) => m.contextCurrent(ctx, opts)),
  );

  examples(
    contexts.command('delete').description('forget a saved context and its token').argument('<name>', 'context name'),
    'ameide context delete staging',
  ).action(lazy(ctx, load.login, (m, name: string) => m.contextDelete(ctx, name)));
}
