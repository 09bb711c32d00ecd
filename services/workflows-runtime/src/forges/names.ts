/** Logins, usernames and label names compare case-insensitively on both forges. */
export const lower = (s: string): string => s.toLowerCase();

/** Distinct non-empty values, first spelling kept, compared case-insensitively. */
export function distinct(values: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const v of values.map((s) => s.trim())) {
    if (v && !seen.has(lower(v))) {
      seen.add(lower(v));
      out.push(v);
    }
  }
  return out;
}
