/**
 * One level: a target under a fixed offered rate for a warm-up and a measured period, open loop.
 *
 * Every event's latency runs from its *intended* send time (the schedule's, not the moment the generator
 * got round to it) to the moment its output reached the target's reader, so a stall anywhere counts as
 * latency (no coordinated omission). Events intended during the warm-up are left out of the latency
 * figures; events intended during the measured period count however late they arrive, drain included.
 * The measured period is cut into windows (throughput, p99, lag, backlog each), which the stability rule
 * of the saturation search reads.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { asyncScheduler, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';
import { cpuBetween, cpuMark, cpuPerEvent, type CpuPerEvent, type CpuUse } from './cpu.js';
import { drainStop, type DrainStop, type LogState } from './drain.js';
import type { EventSequence } from './events.js';
import { LatencyRecorder, type LatencySummary } from './latency-recorder.js';
import { dueBy, startOpenLoop, type LoadSchedule } from './open-loop.js';
import type { BenchTarget, OutputKind } from './targets/target.js';

/**
 * The generator's send interval by transport when none is given, ms: the one place these live (the bench
 * command and `LevelPlan.tickMs` take them from here). Why Kafka's is longer: see `BenchOptions.tickMs`.
 */
export const DEFAULT_TICK_MS = { embedded: 2, kafka: 10 } as const;

/** Warm-up per level when none is given, s: left out of the figures. */
export const DEFAULT_WARMUP_S = 0.5;

export interface LevelPlan {
  readonly offeredRate: number;
  /** The measured period, after the warm-up. */
  readonly durationS: number;
  readonly warmupS: number;
  readonly windowS: number;
  readonly burst?: LoadSchedule['burst'];
  /** How often the generator sends what has fallen due. An event waits up to this for its tick, and that
   * wait counts as latency, so it is kept small. Default `DEFAULT_TICK_MS.embedded` (2 ms). */
  readonly tickMs?: number;
  /**
   * Stop offering load once this many seconds of it wait unanswered: the level has failed already, and a
   * longer overload would only make the drain (and the run) longer.
   */
  readonly maxBacklogS: number;
  /** After the load, how long to wait for the outputs of everything sent before counting the rest lost. */
  readonly drainTimeoutS: number;
  /**
   * Stop waiting earlier when no output at all arrived for this long: the system is stuck or what is
   * missing is gone, and waiting out the full timeout would only cost time. Absent: wait the full timeout.
   * (On Kafka targets the drain also stops as soon as every unanswered event is known to be deleted by
   * the broker: see drain.ts.)
   */
  readonly drainIdleS?: number;
}

export interface WindowStat {
  /** Seconds since the end of the warm-up, at the window's end. */
  readonly atS: number;
  readonly throughput: number;
  readonly p99Ms: number;
  /** The target's input lag when the window closed. */
  lag: number;
  /** Events sent and not yet answered when the window closed. */
  readonly backlog: number;
  rssBytes: number;
}

export interface LevelResult {
  /** The schedule's base rate (outside bursts). */
  readonly offeredRate: number;
  /** Events the schedule offered per second over the measured period, bursts included. */
  readonly offeredMeanRate: number;
  /** Outputs per second that arrived during the measured period. */
  readonly achievedRate: number;
  /** The measured period as run: shorter than planned when the level was cut short. */
  readonly measuredS: number;
  readonly sent: number;
  readonly decided: number;
  readonly deadLetters: number;
  /** Sent events without an output when the drain ended. */
  readonly lost: number;
  /**
   * Where the lost events were when the drain ended, on targets that can tell (Kafka): deleted from the
   * input topic by broker retention, never accepted by the broker, or still in the broker (the system
   * under test did not answer them). Null on embedded targets.
   */
  readonly lostWhere: { readonly deletedByBroker: number; readonly neverAccepted: number; readonly inBroker: number; readonly outputsDeleted: number } | null;
  /** Outputs for events already answered (at-least-once redelivery). */
  readonly duplicates: number;
  /** Events intended during the measured period, intended send → output read. */
  readonly latency: LatencySummary;
  readonly lagMax: number;
  readonly backlogMax: number;
  readonly rssMaxBytes: number;
  readonly windows: readonly WindowStat[];
  /** From the end of the load to the end of the drain. */
  readonly drainS: number;
  /** Why the drain ended. */
  readonly drainEnd: DrainStop;
  /** Why the load stopped early, if it did. */
  readonly cutShort: string | null;
  /** Cores in use over the measured period: the machine's, the harness's, the system under test's. */
  readonly cpu: CpuUse;
  /**
   * The system under test's CPU per output that arrived in the measured period (µs): its process and its main
   * thread. Null figures on embedded targets (the system under test is the harness process).
   */
  readonly cpuPerEvent: CpuPerEvent;
  /**
   * The harness thread's event-loop delay over the level (p99 and max, ms): how late its timers fired.
   * A long one is a stall of the generator and reader (and, on embedded targets, of the system under
   * test), which shows in every event's latency at once.
   */
  readonly eventLoopDelay: { readonly p99Ms: number; readonly maxMs: number };
}

export interface LevelContext {
  readonly target: BenchTarget;
  readonly events: EventSequence;
  /** Where the target's output listener is pointed for the duration of the level. */
  readonly outputs: OutputRouter;
  readonly onWindow?: (w: WindowStat, index: number, plan: LevelPlan) => void;
  /**
   * Unanswered events at which a level is cut short whatever `maxBacklogS` allows: the embedded log keeps
   * a bounded number of input records, and a backlog beyond them would be deleted unread.
   */
  readonly backlogLimit?: number;
  readonly now?: () => number;
  readonly scheduler?: SchedulerLike;
}

/**
 * The target gets one listener for its whole life; levels come and go. Outputs that arrive between levels
 * (stragglers of a level whose drain timed out) go nowhere.
 */
export class OutputRouter {
  #current: ((id: string, kind: OutputKind) => void) | undefined;
  readonly listener = (id: string, kind: OutputKind): void => this.#current?.(id, kind);
  route(to: ((id: string, kind: OutputKind) => void) | undefined): void {
    this.#current = to;
  }
}

export async function runLevel(plan: LevelPlan, ctx: LevelContext): Promise<LevelResult> {
  const now = ctx.now ?? (() => performance.now());
  const scheduler = ctx.scheduler ?? asyncScheduler;
  const { target, events } = ctx;
  const windowMs = plan.windowS * 1000;
  const windowCount = Math.max(1, Math.round(plan.durationS / plan.windowS));

  /** Intended send time of every event not answered yet. */
  const pending = new Map<string, number>();
  const answered = new Set<string>();
  const latency = new LatencyRecorder();
  const windowLatency = Array.from({ length: windowCount }, () => new LatencyRecorder());
  const windowArrivals = new Array<number>(windowCount).fill(0);
  const windows: WindowStat[] = [];
  const lagSamples: Promise<void>[] = [];
  let sent = 0;
  let decided = 0;
  let deadLetters = 0;
  let duplicates = 0;
  let arrivalsMeasured = 0;
  let cutShort: string | null = null;
  let drained: (() => void) | undefined;
  let lastArrival = 0;

  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const start = now();
  const measureStart = start + plan.warmupS * 1000;
  let measureEnd = measureStart + windowCount * windowMs;

  ctx.outputs.route((id, kind) => {
    const intended = pending.get(id);
    if (intended === undefined) {
      if (answered.has(id)) duplicates++;
      return;
    }
    const t = now();
    lastArrival = t;
    pending.delete(id);
    answered.add(id);
    if (kind === 'decision') decided++;
    else deadLetters++;
    const ms = t - intended;
    if (intended >= measureStart && intended < measureEnd) latency.recordMs(ms);
    if (t >= measureStart && t < measureEnd) {
      arrivalsMeasured++;
      const w = Math.floor((t - measureStart) / windowMs);
      if (w < windowCount) {
        windowArrivals[w] = (windowArrivals[w] ?? 0) + 1;
        windowLatency[w]?.recordMs(ms);
      }
    }
    if (pending.size === 0) drained?.();
  });

  const schedule: LoadSchedule = {
    rate: plan.offeredRate,
    durationMs: (plan.warmupS + windowCount * plan.windowS) * 1000,
    ...(plan.burst === undefined ? {} : { burst: plan.burst }),
  };
  const loop = startOpenLoop({
    schedule,
    now,
    tickMs: plan.tickMs ?? DEFAULT_TICK_MS.embedded,
    send: (intended) => {
      const batch = events.take(intended.length);
      for (let i = 0; i < batch.length; i++) pending.set(batch[i]!.id, intended[i]!);
      sent += batch.length;
      const accepted = target.send(batch);
      if (ctx.backlogLimit !== undefined && cutShort === null && pending.size > ctx.backlogLimit) {
        cut(`${pending.size} events unanswered: beyond ${ctx.backlogLimit}, input retention could delete them unread`, Math.max(0, Math.floor((now() - measureStart) / windowMs)));
      }
      return accepted;
    },
  });

  // CPU marks at the start and the end of the measured period.
  let cpuStart = cpuMark(now(), null);
  let cpuEnd = cpuStart;
  const markCpu = async (): Promise<ReturnType<typeof cpuMark>> => {
    const sut = await target.sutCpu().catch(() => null);
    return cpuMark(now(), sut?.processUs ?? null, sut?.mainThreadUs ?? null);
  };
  const cpuMarks: Promise<void>[] = [];
  cpuMarks.push(new Promise<void>((resolve) => {
    scheduler.schedule(() => void markCpu().then((m) => { cpuStart = m; resolve(); }), plan.warmupS * 1000);
  }));

  // Window ticks, from the end of the warm-up.
  let ticks: Subscription | undefined;
  const closeWindow = (index: number, live: boolean): void => {
    const stat: WindowStat = {
      atS: ((index + 1) * windowMs) / 1000,
      throughput: (windowArrivals[index] ?? 0) / plan.windowS,
      p99Ms: windowLatency[index]?.summary().p99Ms ?? 0,
      lag: 0,
      backlog: pending.size,
      rssBytes: 0,
    };
    windows.push(stat);
    lagSamples.push(Promise.all([target.lag(), target.rss()]).then(([lag, rss]) => {
      stat.lag = lag;
      stat.rssBytes = rss;
      ctx.onWindow?.(stat, index, plan);
    }, () => ctx.onWindow?.(stat, index, plan)));
    if (live && cutShort === null && pending.size > plan.offeredRate * plan.maxBacklogS) {
      cut(`more than ${plan.maxBacklogS} s of load unanswered after ${stat.atS} s`, index);
    } else if (index === windowCount - 1) {
      cpuMarks.push(markCpu().then((m) => { cpuEnd = m; }));
    }
  };
  /** Stops the load: the level has failed already. Its measured period ends with window `index`. */
  function cut(reason: string, index: number): void {
    cutShort = reason;
    measureEnd = Math.min(measureEnd, measureStart + (index + 1) * windowMs);
    loop.stop();
    cpuMarks.push(markCpu().then((m) => { cpuEnd = m; }));
  }
  ticks = scheduler.schedule(function tick(this: SchedulerAction<number>, index = 0) {
    if (index >= windowCount || cutShort !== null) return;
    closeWindow(index, true);
    this.schedule(index + 1, windowMs);
  }, plan.warmupS * 1000 + windowMs, 0);

  await loop.done;
  const loadEnd = now();
  lastArrival = Math.max(lastArrival, loadEnd);
  let log: LogState | null = null;
  const progress = () => ({ pending: pending.size, sinceLastOutputS: (now() - lastArrival) / 1000, elapsedS: (now() - loadEnd) / 1000, log });
  const limits = { timeoutS: plan.drainTimeoutS, ...(plan.drainIdleS === undefined ? {} : { idleS: plan.drainIdleS }) };
  let drainEnd = drainStop(progress(), limits);
  if (drainEnd === null) {
    drainEnd = await new Promise<DrainStop>((resolve) => {
      let asking = false;
      let checks = 0;
      const done = (stop: DrainStop): void => { check.unsubscribe(); timeout.unsubscribe(); drained = undefined; resolve(stop); };
      const timeout = scheduler.schedule(() => done(drainStop({ ...progress(), elapsedS: plan.drainTimeoutS }, limits) ?? { end: 'timeout', reason: 'drain timeout' }), plan.drainTimeoutS * 1000);
      const check = scheduler.schedule(function tick(this: SchedulerAction<undefined>) {
        const stop = drainStop(progress(), limits);
        if (stop !== null) return done(stop);
        // Where the unanswered events stand in the broker, once a second: walking them costs time.
        if (target.logState !== undefined && !asking && checks++ % 4 === 0) {
          asking = true;
          target.logState(pending.keys()).then((state) => { log = state; }, () => undefined).finally(() => { asking = false; });
        }
        this.schedule(undefined, 250);
      }, 250);
      drained = () => done({ end: 'caught-up', reason: 'every event sent has its output' });
    });
  }
  const drainS = (now() - loadEnd) / 1000;
  ticks.unsubscribe();
  ticks = undefined;
  // The load can end, and its outputs arrive, before the last window's tick: every event of those
  // windows is in by now, so close them here.
  for (let i = windows.length; i < windowCount && cutShort === null; i++) closeWindow(i, false);
  ctx.outputs.route(undefined);
  await Promise.all(lagSamples);
  await Promise.all(cpuMarks);
  loopDelay.disable();

  const lostWhere = pending.size === 0 || target.logState === undefined ? null
    : await target.logState(pending.keys()).then((l) => ({
      deletedByBroker: l.deleted, neverAccepted: l.neverAccepted, inBroker: pending.size - l.deleted - l.neverAccepted, outputsDeleted: l.outputsDeleted,
    }), () => null);
  const measuredS = (measureEnd - measureStart) / 1000;
  const offeredInPeriod = dueBy(schedule, measureEnd - start) - dueBy(schedule, measureStart - start);
  return {
    offeredRate: plan.offeredRate,
    offeredMeanRate: offeredInPeriod / measuredS,
    achievedRate: arrivalsMeasured / measuredS,
    measuredS,
    sent,
    decided,
    deadLetters,
    lost: pending.size,
    lostWhere,
    duplicates,
    latency: latency.summary(),
    lagMax: Math.max(0, ...windows.map((w) => w.lag)),
    backlogMax: Math.max(0, ...windows.map((w) => w.backlog)),
    rssMaxBytes: Math.max(0, ...windows.map((w) => w.rssBytes)),
    windows,
    drainS,
    drainEnd,
    cutShort,
    cpu: cpuBetween(cpuStart, cpuEnd),
    cpuPerEvent: cpuPerEvent(cpuStart, cpuEnd, arrivalsMeasured),
    eventLoopDelay: { p99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100, maxMs: Math.round(loopDelay.max / 1e4) / 100 },
  };
}

/** The context without its per-window report: for runs that are not measured (priming, warm-up). */
export function withoutWindows(ctx: LevelContext): LevelContext {
  const { onWindow: _onWindow, ...quiet } = ctx;
  return quiet;
}

/**
 * Sends a few events and waits for all their outputs: the target's consumers have joined, its models are
 * loaded and its first batches ran, before any level is timed.
 */
export async function primeTarget(ctx: LevelContext, count: number, timeoutS: number): Promise<{ answered: number; sent: number }> {
  const plan: LevelPlan = { offeredRate: Math.max(1, count), durationS: 1, warmupS: 0, windowS: 1, maxBacklogS: Infinity, drainTimeoutS: timeoutS };
  const r = await runLevel(plan, withoutWindows(ctx));
  return { answered: r.decided + r.deadLetters, sent: r.sent };
}
