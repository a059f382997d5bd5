/**
 * The windowed join: for each event, collects what its pipeline steps report until every step has settled
 * or the event's deadline passes, then resolves the event's JoinResult.
 *
 * All windows of a pipeline share one deadline length, so a DeadlineQueue (one scheduled action for the
 * oldest open window) replaces a timer per event. Time comes from the injected scheduler, so tests run on
 * virtual time.
 */
import type { SchedulerLike } from 'rxjs';
import type { Counter } from 'prom-client';
import type { JoinMode } from '../../config/compiled.js';
import { DeadlineQueue, type Deadline } from '../../core/deadline-queue.js';
import { VerdictError, type SerializedError } from '../../core/errors.js';
import type { Metrics } from '../../core/metrics.js';
import type { RowOutputs } from '../../models/types.js';
import type { JoinResult, StepReport, StepStatus } from './types.js';

export class DuplicateJoinError extends VerdictError {
  static override readonly code = 'JOIN_DUPLICATE_EVENT';
}

export interface JoinWindowsOptions {
  readonly pipeline: string;
  readonly steps: readonly string[];
  readonly mode: JoinMode;
  readonly deadlineMs: number;
  readonly scheduler: SchedulerLike;
  readonly metrics?: Metrics;
}

interface Window {
  readonly eventId: string;
  readonly openedAt: number;
  deadline: Deadline | undefined;
  /** By step index; undefined while the step is pending. */
  readonly reports: Array<StepReport | undefined>;
  pending: number;
  readonly resolve: (result: JoinResult) => void;
}

export class JoinWindows {
  readonly #steps: readonly string[];
  readonly #stepIndex: ReadonlyMap<string, number>;
  readonly #mode: JoinMode;
  readonly #scheduler: SchedulerLike;
  readonly #deadlines: DeadlineQueue;
  readonly #open = new Map<string, Window>();
  #late = 0;
  #duplicates = 0;
  readonly #outcomeCounters: ReadonlyArray<Readonly<Record<StepStatus, { inc(): void }>>> | undefined;
  readonly #lateCounters: ReadonlyArray<{ inc(): void }> | undefined;
  readonly #incomplete: { inc(): void } | undefined;

  constructor(options: JoinWindowsOptions) {
    this.#steps = options.steps;
    this.#stepIndex = new Map(options.steps.map((s, i) => [s, i]));
    this.#mode = options.mode;
    this.#scheduler = options.scheduler;
    this.#deadlines = new DeadlineQueue(options.scheduler, options.deadlineMs);
    const m = options.metrics;
    if (m !== undefined) {
      // Label children resolved once: a labelled inc() per step per event would hash label sets on the hot path.
      const child = (c: Counter, labels: Record<string, string>) => c.labels(labels);
      const p = options.pipeline;
      this.#outcomeCounters = options.steps.map((step) => ({
        ok: child(m.stepOutcomes, { pipeline: p, step, status: 'ok' }),
        skipped: child(m.stepOutcomes, { pipeline: p, step, status: 'skipped' }),
        error: child(m.stepOutcomes, { pipeline: p, step, status: 'error' }),
        timeout: child(m.stepOutcomes, { pipeline: p, step, status: 'timeout' }),
      }));
      this.#lateCounters = options.steps.map((step) => child(m.lateOutputs, { pipeline: p, step }));
      this.#incomplete = child(m.incompleteJoins, { pipeline: p });
    }
  }

  /** Windows currently open. */
  get openCount(): number {
    return this.#open.size;
  }

  /** Reports that arrived after their window closed (or for no window at all): counted and dropped. */
  get lateCount(): number {
    return this.#late;
  }

  /** Second reports for a step that had already settled: ignored, first one wins. */
  get duplicateCount(): number {
    return this.#duplicates;
  }

  /** Opens the event's window; resolves when it closes. */
  open(eventId: string): Promise<JoinResult> {
    if (this.#open.has(eventId)) {
      return Promise.reject(new DuplicateJoinError(`a join window for event ${eventId} is already open`, { details: { eventId } }));
    }
    const openedAt = this.#scheduler.now();
    return new Promise<JoinResult>((resolve) => {
      const window: Window = {
        eventId, openedAt, deadline: undefined,
        reports: new Array<StepReport | undefined>(this.#steps.length).fill(undefined),
        pending: this.#steps.length, resolve,
      };
      this.#open.set(eventId, window);
      if (window.pending === 0) this.#close(window);
      else window.deadline = this.#deadlines.add(() => this.#close(window));
    });
  }

  /** Settles one step of an event. Reports after the window closed are counted as late and dropped. */
  report(eventId: string, stepId: string, report: StepReport): void {
    const index = this.#stepIndex.get(stepId);
    const window = this.#open.get(eventId);
    if (window === undefined || index === undefined) {
      this.#late++;
      if (index !== undefined) this.#lateCounters?.[index]?.inc();
      return;
    }
    if (window.reports[index] !== undefined) {
      this.#duplicates++;
      return;
    }
    window.reports[index] = report;
    window.pending--;
    if (window.pending === 0 || (this.#mode === 'any' && report.status === 'ok')) this.#close(window);
  }

  /** Closes every open window now (shutdown): pending steps become timeouts. */
  close(): void {
    this.#deadlines.clear();
    for (const window of [...this.#open.values()]) this.#close(window);
  }

  #close(window: Window): void {
    window.deadline?.cancel();
    this.#open.delete(window.eventId);
    const outputs: Record<string, RowOutputs> = {};
    const models: Record<string, string> = {};
    const completeness: Record<string, StepStatus> = {};
    const errors: Record<string, SerializedError> = {};
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < this.#steps.length; i++) {
      const step = this.#steps[i] as string;
      const report = window.reports[i];
      const status: StepStatus = report?.status ?? 'timeout';
      completeness[step] = status;
      this.#outcomeCounters?.[i]?.[status].inc();
      if (report === undefined) { failed++; continue; }
      if (report.status === 'ok') { ok++; outputs[step] = report.outputs; }
      else if (report.status === 'error') { failed++; errors[step] = report.error; }
      else if (report.status === 'timeout') failed++;
      if (report.status !== 'skipped' && report.model !== undefined) models[step] = report.model;
    }
    const complete = this.#mode === 'all' ? failed === 0 : ok > 0;
    if (!complete) this.#incomplete?.inc();
    window.resolve({
      eventId: window.eventId, outputs, models, completeness, errors, complete,
      openedAt: window.openedAt, closedAt: this.#scheduler.now(),
    });
  }
}
