/**
 * Where the CPU went during a level: the whole machine's busy cores, the harness process's and, when the
 * system under test runs in a process of its own, that process's, all its threads and its main thread
 * alone. On a shared machine the difference between the first and the others is what other work took (plus
 * the mock broker's share, on Kafka).
 */
import { cpus } from 'node:os';

export interface CpuMark {
  readonly at: number;
  readonly machineBusyMs: number;
  readonly harnessUs: number;
  readonly sutUs: number | null;
  /** The system under test's main thread alone (bench/thread-cpu.ts); null or absent when not measured. */
  readonly sutMainUs?: number | null;
}

/**
 * The system under test's CPU time per output over an interval, µs: its whole process (every thread:
 * workers, librdkafka's, GC helpers) and its main thread alone (the event loop, which every record's
 * JavaScript work shares). Null when not measured: no process of its own (embedded targets), no outputs,
 * an empty or backward interval (see CpuUse), or no main-thread figure (not Linux).
 */
export interface CpuPerEvent {
  readonly processUs: number | null;
  readonly mainThreadUs: number | null;
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

export function cpuMark(now: number, sutUs: number | null, sutMainUs: number | null = null): CpuMark {
  const u = process.cpuUsage();
  return { at: now, machineBusyMs: machineBusyMs(), harnessUs: u.user + u.system, sutUs, sutMainUs };
}

/** CPU µs per output of the system under test between two marks, `events` outputs apart; one decimal. */
export function cpuPerEvent(a: CpuMark, b: CpuMark, events: number): CpuPerEvent {
  const per = (from: number | null | undefined, to: number | null | undefined): number | null =>
    from === null || from === undefined || to === null || to === undefined || events <= 0 || b.at <= a.at || to < from
      ? null : Math.round(((to - from) / events) * 10) / 10;
  return { processUs: per(a.sutUs, b.sutUs), mainThreadUs: per(a.sutMainUs, b.sutMainUs) };
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
