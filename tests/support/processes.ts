import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** What a test can tell about a live process from /proc. */
export interface ProcessInfo {
  pid: number;
  uid: number;
  cwd: string;
  /** Command line and environment, NUL-separated. */
  text: string;
}

/** Live (non-zombie) processes matching `keep`; a killed process whose parent is gone may linger as a zombie. */
export function liveProcesses(keep: (p: ProcessInfo) => boolean): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue;
      const info: ProcessInfo = {
        pid: Number(name),
        uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]),
        cwd: readlinkSync(`/proc/${name}/cwd`),
        text: readFileSync(`/proc/${name}/cmdline`, 'utf8') + readFileSync(`/proc/${name}/environ`, 'utf8'),
      };
      if (keep(info)) out.push(info.pid);
    } catch {
      /* gone */
    }
  }
  return out;
}
