import { describe, expect, it } from 'vitest';
import { runPaths, safeSegment } from '../../src/activities/workspace.js';

describe('tenant directories', () => {
  it('keep plain tenant ids as they are', () => {
    expect(safeSegment('acme')).toBe('acme');
    expect(safeSegment('team-1.eu_west')).toBe('team-1.eu_west');
  });

  it('never let two tenant ids share a directory, however they differ', () => {
    const ids = ['a/b', 'a_b', 'a b', 'a:b', 'a\\b', '..', '.', 'ä'];
    const dirs = ids.map(safeSegment);
    expect(new Set(dirs).size).toBe(ids.length);
    for (const d of dirs) expect(d).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(dirs).not.toContain('..');
    expect(runPaths('/w', 'a/b', 'r').runDir).not.toBe(runPaths('/w', 'a_b', 'r').runDir);
  });
});
