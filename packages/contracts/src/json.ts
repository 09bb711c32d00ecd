/**
 * protobuf-es `fromJson` rejects `undefined` where a JSON value is expected; plain objects built in
 * TypeScript often carry optional fields as `undefined`. This leaves such fields out, recursively.
 */
export function compactJson<T extends object>(o: T): T {
  return Object.fromEntries(
    Object.entries(o)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, v && typeof v === 'object' && !Array.isArray(v) ? compactJson(v) : v]),
  ) as T;
}
