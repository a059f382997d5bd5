/**
 * Open-loop load: events are due at fixed times (rate, optionally with bursts), whatever the system under
 * test is doing. Each event carries its *intended* send time, and latency is measured from that, so a stall
 * in the system or the generator shows up as latency instead of silently lowering the offered load
 * (coordinated omission).
 */

export interface LoadSchedule {
  /** Events per second offered outside bursts. */
  readonly rate: number;
  readonly durationMs: number;
  /** Every `everyMs`, the rate is multiplied by `factor` for `lengthMs`. */
  readonly burst?: { readonly everyMs: number; readonly lengthMs: number; readonly factor: number };
}

export interface OpenLoopOptions {
  readonly schedule: LoadSchedule;
  /** Sends `count` events whose intended send times are `intended[0..count)` (ms on `now`'s clock). */
  readonly send: (intended: readonly number[]) => Promise<void> | void;
  readonly now?: () => number;
  readonly tickMs?: number;
}

export interface OpenLoop {
  /** Resolves when the schedule is over and every send has settled. */
  readonly done: Promise<{ sent: number }>;
  stop(): void;
}

/** Events due by `elapsedMs`: the integral of the (possibly bursty) rate. */
export function dueBy(schedule: LoadSchedule, elapsedMs: number): number {
  const t = Math.min(elapsedMs, schedule.durationMs);
  const base = (schedule.rate * t) / 1000;
  const b = schedule.burst;
  if (b === undefined || b.factor === 1) return Math.floor(base);
  const full = Math.floor(t / b.everyMs);
  const inBurst = full * Math.min(b.lengthMs, b.everyMs) + Math.min(t - full * b.everyMs, b.lengthMs);
  return Math.floor(base + (schedule.rate * (b.factor - 1) * inBurst) / 1000);
}

/** The intended send time of the n-th event (inverse of dueBy, by bisection: schedules are monotonic). */
function intendedTime(schedule: LoadSchedule, n: number): number {
  let lo = 0;
  let hi = schedule.durationMs;
  for (let i = 0; i < 40 && hi - lo > 0.001; i++) {
    const mid = (lo + hi) / 2;
    if (dueBy(schedule, mid) > n) hi = mid;
    else lo = mid;
  }
  return hi;
}

export function startOpenLoop(options: OpenLoopOptions): OpenLoop {
  const now = options.now ?? (() => performance.now());
  const tickMs = options.tickMs ?? 5;
  const { schedule } = options;
  const total = dueBy(schedule, schedule.durationMs);
  const start = now();
  const pending = new Set<Promise<void>>();
  let sent = 0;
  let stopped = false;
  let finish: (v: { sent: number }) => void = () => undefined;
  const done = new Promise<{ sent: number }>((resolve) => (finish = resolve));

  const tick = (): void => {
    const due = stopped ? sent : Math.min(total, dueBy(schedule, now() - start));
    if (due > sent) {
      const intended: number[] = [];
      const uniform = schedule.burst === undefined;
      for (let n = sent; n < due; n++) intended.push(start + (uniform ? (n * 1000) / schedule.rate : intendedTime(schedule, n)));
      sent = due;
      const p = Promise.resolve(options.send(intended));
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    if (stopped || sent >= total) {
      clearInterval(timer);
      void Promise.allSettled([...pending]).then(() => finish({ sent }));
    }
  };
  const timer = setInterval(tick, tickMs);
  return { done, stop: () => { stopped = true; } };
}
