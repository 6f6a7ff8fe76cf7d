// What a process has used, from /proc: Linux only (undefined elsewhere, or once the process is gone).
import { readFileSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ 100: /proc/<pid>/stat counts CPU time in clock ticks of 10 ms

/** CPU time (user + system) the process has used, in ms. */
export function cpuMs(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself hold spaces or ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/**
 * Starts counting the CPU the processes use: the function returned gives each one's ms since then per unit of
 * work (divided by `units`), or undefined when a process could not be read at either end.
 */
export function cpuSince(pids: ReadonlyArray<number | undefined>): (units: number) => number[] | undefined {
  const before = pids.map(cpuMs);
  return (units) => {
    const after = pids.map(cpuMs);
    if (!after.every((c, i) => c !== undefined && before[i] !== undefined)) return undefined;
    return after.map((c, i) => (c! - before[i]!) / units);
  };
}

/** Resident memory of the process, in MiB. */
export function rssMiB(pid: number | undefined): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}
