/** The lines a `command` provider's commands print to say where the preview is (docs/definitions.md, "Previews"). */
export const URL_LINE = 'AMEIDE_PREVIEW_URL';
export const ALIAS_URL_LINE = 'AMEIDE_PREVIEW_ALIAS_URL';

/**
 * The last `AMEIDE_PREVIEW_URL=<url>` and `AMEIDE_PREVIEW_ALIAS_URL=<url>` lines of a command's
 * (redacted) output; each must be a whole line (surrounding blanks ignored) with an http(s) URL.
 * A line whose value is not such a URL counts as missing.
 */
export function parsePreviewUrls(output: string): { url?: string; aliasUrl?: string } {
  const found: { url?: string; aliasUrl?: string } = {};
  for (const raw of output.split('\n')) {
    const m = /^\s*(AMEIDE_PREVIEW_URL|AMEIDE_PREVIEW_ALIAS_URL)=(\S+)\s*$/.exec(raw);
    if (!m || !httpUrl(m[2]!)) continue;
    if (m[1] === URL_LINE) found.url = m[2];
    else found.aliasUrl = m[2];
  }
  return found;
}

function httpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '';
  } catch {
    return false;
  }
}
