/**
 * The deadline join (not a time-windowed stream join: no window slides here): collects what each pipeline step reports for each event until the event's join is
 * settled (every step reported; in mode `any`, one step reported ok) or its deadline passes, then yields
 * the event's JoinResult. Whether it is complete is `isJoinComplete` (completeness.ts): skipped steps never
 * make a join incomplete.
 *
 * Joins are opened per block of events (the records the stream processes together), not per event: a
 * block shares one deadline, one promise and one flat array of reports, so joining costs a few
 * allocations per block rather than per event, while every event keeps its own completeness. All blocks of
 * a pipeline share one deadline length, so a DeadlineQueue (one scheduled action for the oldest open
 * block) serves them all. Time comes from the injected scheduler, so tests run on virtual time.
 */
import type { Clock } from '../../core/clock.js';
import type { JoinMode } from '../../config/compiled.js';
import { DeadlineQueue, type Deadline } from '../../core/deadline-queue.js';
import type { SerializedError } from '../../core/errors.js';
import type { Metrics } from '../../core/metrics.js';
import type { RowOutputs } from '../../models/types.js';
import { isJoinComplete } from './completeness.js';
import type { JoinResult, StepReport, StepStatus } from './types.js';

export interface DeadlineJoinOptions {
  readonly pipeline: string;
  readonly steps: readonly string[];
  readonly mode: JoinMode;
  readonly deadlineMs: number;
  readonly scheduler: Clock;
  readonly metrics?: Metrics;
}

/** An open window over a block of events. */
export interface JoinBlock {
  /** Settles step `step` (index in the pipeline) of the block's `event`-th event. First report wins. */
  report(event: number, step: number, report: StepReport): void;
  /** One JoinResult per event, in block order, once every event has settled or the deadline passed. */
  readonly closed: Promise<JoinResult[]>;
  /**
   * Closes the window now if its deadline has passed by the clock, though its timer has not run (this thread
   * was busy: a model run on it blocks it). Call before reporting results that may have arrived late, so that
   * they are counted late rather than accepted.
   */
  expireIfDue(): void;
}

const STATUSES: readonly StepStatus[] = ['ok', 'skipped', 'error', 'timeout'];

class Window implements JoinBlock {
  readonly closed: Promise<JoinResult[]>;
  readonly openedAt: number;
  deadline: Deadline | undefined;
  /** By event × step; undefined while pending. */
  readonly reports: Array<StepReport | undefined>;
  /** Steps still pending per event; 0 once the event's join is settled. */
  readonly pending: Uint16Array;
  events: number;
  open = true;
  resolve!: (results: JoinResult[]) => void;

  constructor(
    readonly onReport: (window: Window, event: number, step: number, report: StepReport) => void,
    readonly onExpireCheck: () => void,
    readonly eventIds: readonly string[],
    steps: number,
    openedAt: number,
  ) {
    this.openedAt = openedAt;
    this.reports = new Array<StepReport | undefined>(eventIds.length * steps).fill(undefined);
    this.pending = new Uint16Array(eventIds.length).fill(steps);
    this.events = steps === 0 ? 0 : eventIds.length;
    this.closed = new Promise((resolve) => { this.resolve = resolve; });
  }

  report(event: number, step: number, report: StepReport): void {
    this.onReport(this, event, step, report);
  }

  expireIfDue(): void {
    if (this.open) this.onExpireCheck();
  }
}

export class DeadlineJoin {
  readonly #steps: readonly string[];
  readonly #mode: JoinMode;
  readonly #scheduler: Clock;
  readonly #deadlines: DeadlineQueue;
  readonly #open = new Set<Window>();
  #late = 0;
  #duplicates = 0;
  readonly #outcomeCounters: ReadonlyArray<Readonly<Record<StepStatus, { inc(n?: number): void }>>> | undefined;
  readonly #lateCounters: ReadonlyArray<{ inc(): void }> | undefined;
  readonly #incomplete: { inc(n?: number): void } | undefined;
  readonly #onReport = (window: Window, event: number, step: number, report: StepReport): void => this.#settle(window, event, step, report);
  readonly #onExpireCheck = (): void => this.#deadlines.expireDue();

  constructor(options: DeadlineJoinOptions) {
    this.#steps = options.steps;
    this.#mode = options.mode;
    this.#scheduler = options.scheduler;
    this.#deadlines = new DeadlineQueue(options.scheduler, options.deadlineMs);
    const m = options.metrics;
    if (m !== undefined) {
      // Label children resolved once, and counted per block: a labelled inc() per step per event would hash
      // label sets on the hot path.
      const p = options.pipeline;
      this.#outcomeCounters = options.steps.map((step) => Object.fromEntries(
        STATUSES.map((status) => [status, m.stepOutcomes.labels({ pipeline: p, step, status })]),
      ) as Record<StepStatus, { inc(n?: number): void }>);
      this.#lateCounters = options.steps.map((step) => m.lateOutputs.labels({ pipeline: p, step }));
      this.#incomplete = m.incompleteJoins.labels({ pipeline: p });
    }
  }

  /** Blocks currently open. */
  get openCount(): number {
    return this.#open.size;
  }

  /** Reports that arrived after their event's join settled: counted and dropped. */
  get lateCount(): number {
    return this.#late;
  }

  /** Second reports for a step that had already settled: ignored, first one wins. */
  get duplicateCount(): number {
    return this.#duplicates;
  }

  /** Opens a window over `eventIds` (one block, in order); its `closed` resolves with one result per event. */
  open(eventIds: readonly string[]): JoinBlock {
    const window = new Window(this.#onReport, this.#onExpireCheck, eventIds, this.#steps.length, this.#scheduler.now());
    if (window.events === 0) {
      this.#close(window);
    } else {
      this.#open.add(window);
      window.deadline = this.#deadlines.add(() => this.#close(window));
    }
    return window;
  }

  /** Closes every open window now (shutdown): pending steps become timeouts. */
  close(): void {
    this.#deadlines.clear();
    for (const window of [...this.#open]) this.#close(window);
  }

  #settle(window: Window, event: number, step: number, report: StepReport): void {
    const steps = this.#steps.length;
    if (!window.open || window.pending[event] === 0 || step < 0 || step >= steps || event < 0 || event >= window.eventIds.length) {
      this.#late++;
      this.#lateCounters?.[step]?.inc();
      return;
    }
    const at = event * steps + step;
    if (window.reports[at] !== undefined) {
      this.#duplicates++;
      return;
    }
    window.reports[at] = report;
    const left = --window.pending[event]!;
    if (left > 0 && this.#mode === 'any' && report.status === 'ok') window.pending[event] = 0;
    if (window.pending[event] === 0 && --window.events === 0) this.#close(window);
  }

  #close(window: Window): void {
    window.deadline?.cancel();
    window.open = false;
    this.#open.delete(window);
    const closedAt = this.#scheduler.now();
    const steps = this.#steps;
    const counts = new Uint32Array(steps.length * STATUSES.length);
    let incomplete = 0;
    const results: JoinResult[] = [];
    for (let e = 0; e < window.eventIds.length; e++) {
      const outputs: Record<string, RowOutputs> = {};
      const models: Record<string, string> = {};
      const completeness: Record<string, StepStatus> = {};
      const errors: Record<string, SerializedError> = {};
      let ok = 0;
      let failed = 0;
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i]!;
        const report = window.reports[e * steps.length + i];
        const status: StepStatus = report?.status ?? 'timeout';
        completeness[step] = status;
        counts[i * STATUSES.length + STATUSES.indexOf(status)]!++;
        if (report === undefined) { failed++; continue; }
        if (report.status === 'ok') { ok++; outputs[step] = report.outputs; }
        else if (report.status === 'error') { failed++; errors[step] = report.error; }
        else if (report.status === 'timeout') failed++;
        if (report.status !== 'skipped' && report.model !== undefined) models[step] = report.model;
      }
      const complete = isJoinComplete(this.#mode, ok, failed);
      if (!complete) incomplete++;
      results.push({ eventId: window.eventIds[e]!, outputs, models, completeness, errors, complete, openedAt: window.openedAt, closedAt });
    }
    if (this.#outcomeCounters !== undefined) {
      for (let i = 0; i < steps.length; i++) {
        for (let s = 0; s < STATUSES.length; s++) {
          const n = counts[i * STATUSES.length + s]!;
          if (n > 0) this.#outcomeCounters[i]![STATUSES[s]!].inc(n);
        }
      }
    }
    if (incomplete > 0) this.#incomplete?.inc(incomplete);
    window.resolve(results);
  }
}
