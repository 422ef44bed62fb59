import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

// CPU time of processes, from /proc/<pid>/stat (Linux). utime + stime are the process's own ticks;
// cutime + cstime are those of the children it has already reaped. A PostgreSQL backend that exits
// takes its own counters with it, but the postmaster reaps it, so its ticks move into the postmaster's
// cutime: a process tree's total (its own ticks, its reaped children's, and each live child's tree)
// only loses what a child spent before the first sample if it exits between two samples, and that is
// exactly what a delta must leave out.

export const CLOCK_TICKS_PER_SECOND = clockTicks();

function clockTicks(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

type Stat = { ppid: number; ownTicks: number; reapedChildTicks: number };

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after it start past the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const field = (n: number) => Number(fields[n - 3]);
  return { ppid: field(4), ownTicks: field(14) + field(15), reapedChildTicks: field(16) + field(17) };
}

/** The parent of a live process (a PostgreSQL backend's is the postmaster). */
export function parentOf(pid: number): number {
  const stat = readStat(pid);
  if (!stat) throw new Error(`no process ${pid}`);
  return stat.ppid;
}

/** The live children of `pid`. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (readStat(Number(entry))?.ppid === pid) children.push(Number(entry));
  }
  return children;
}

/** CPU ticks of a process and all its descendants, live or reaped; 0 when it is gone. */
export function treeTicks(pid: number): number {
  const stat = readStat(pid);
  if (!stat) return 0;
  return stat.ownTicks + stat.reapedChildTicks + childrenOf(pid).reduce((sum, child) => sum + treeTicks(child), 0);
}

export const ticksToMs = (ticks: number) => (ticks * 1000) / CLOCK_TICKS_PER_SECOND;

/** Samples each named process tree; `cpuMsBetween` turns two samples into milliseconds of CPU. */
export function sampleCpu(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, treeTicks(pid)]));
}

export function cpuMsBetween(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(before).map((name) => [name, ticksToMs(after[name]! - before[name]!)]));
}
