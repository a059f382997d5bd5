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

/** Cores in use over an interval (1.0 = one core fully busy). */
export interface CpuUse {
  readonly machineCores: number;
  readonly harnessCores: number;
  /** Null when the system under test runs in the harness process (embedded targets). */
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
  const wallMs = Math.max(1, b.at - a.at);
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    machineCores: round((b.machineBusyMs - a.machineBusyMs) / wallMs),
    harnessCores: round((b.harnessUs - a.harnessUs) / 1000 / wallMs),
    sutCores: a.sutUs === null || b.sutUs === null ? null : round((b.sutUs - a.sutUs) / 1000 / wallMs),
  };
}
