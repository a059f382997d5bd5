/**
 * Where the CPU went during a level: the whole machine's busy cores, the harness process's and, when the
 * system under test runs in a process of its own, that process's. On a shared machine the difference
 * between the first and the others is what other work took (plus the mock broker's share, on Kafka).
 */
import { cpus } from 'node:os';

export interface CpuMark {
  readonly at: number;
  readonly machineBusyMs: number;
  readonly harnessUs: number;
  readonly sutUs: number | null;
}

/**
 * Cores in use over an interval (1.0 = one core fully busy). A figure is null when it was not measured:
 * the interval is empty or runs backwards (a level cut short before its warm-up ended takes its end mark
 * before its start mark), or the counter went backwards. Never a negative number.
 */
export interface CpuUse {
  readonly machineCores: number | null;
  readonly harnessCores: number | null;
  /** Also null when the system under test runs in the harness process (embedded targets). */
  readonly sutCores: number | null;
}

function machineBusyMs(): number {
  let busy = 0;
  for (const c of cpus()) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return busy;
}

export function cpuMark(now: number, sutUs: number | null): CpuMark {
  const u = process.cpuUsage();
  return { at: now, machineBusyMs: machineBusyMs(), harnessUs: u.user + u.system, sutUs };
}

export function cpuBetween(a: CpuMark, b: CpuMark): CpuUse {
  const wallMs = b.at - a.at;
  const cores = (busyMs: number): number | null =>
    wallMs > 0 && busyMs >= 0 ? Math.round((busyMs / wallMs) * 100) / 100 : null;
  return {
    machineCores: cores(b.machineBusyMs - a.machineBusyMs),
    harnessCores: cores((b.harnessUs - a.harnessUs) / 1000),
    sutCores: a.sutUs === null || b.sutUs === null ? null : cores((b.sutUs - a.sutUs) / 1000),
  };
}
