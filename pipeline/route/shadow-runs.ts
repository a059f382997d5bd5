/**
 * What the router hands out about a step's shadow: the shadow version runs the step's rows beside the
 * version that decides, and its results go here, never to the join. The block processor compares the
 * decisions they would have made (pipeline/decide/shadow-decisions.ts).
 *
 * Cost is bounded per step and per thread (a block worker, or the main thread): a block's shadow call is
 * dropped, and its rows counted as dropped for `backpressure`, when the step's shadow rows already in flight
 * plus the block's would exceed SHADOW_ROWS_IN_FLIGHT. A shadow that keeps up with its primary never comes
 * near it (the stream admits 512 records at a time by default, so the primary has at most that many rows of
 * a step in flight); one that falls behind queues at most that many rows, a few milliseconds of work for
 * models of this size, and every shadow call is also cut at the step's own time bound, like the primary's.
 */
import type { ResolvedModel, RowResults } from '../../models/types.js';

/** Shadow rows of one step a thread keeps in flight at most (see the module comment). */
export const SHADOW_ROWS_IN_FLIGHT = 512;

/** A shadow call's results, once both it and the calls that decided for the same rows have answered. */
export interface ShadowResult extends RowResults {
  /** Milliseconds from the step's start to the shadow's answer (the same clock as the primary's latency). */
  readonly latencyMs: number;
  /** Per row: milliseconds the version that decided for it (primary or canary) took, on the same start. */
  readonly decidingLatencyMs: Float64Array;
}

/** One step's shadow call for one block. */
export interface ShadowRun {
  /** The step's index in pipeline order. */
  readonly step: number;
  readonly model: ResolvedModel;
  /** Per row: the position of its event in the routed block. */
  readonly events: readonly number[];
  /** Never rejects: failed rows carry their error, as a step's do. */
  readonly result: Promise<ShadowResult>;
}

/** Where the router reports a block's shadow calls. */
export interface ShadowObserver {
  /** A shadow call started. It may come after the block's join closed (a late dependency). */
  ran(run: ShadowRun): void;
  /** A shadow call was not made: `rows` rows of step `step` have no shadow result. */
  dropped(step: number, rows: number, reason: 'backpressure'): void;
}

/** Counts one thread's shadow rows in flight per step, against SHADOW_ROWS_IN_FLIGHT. */
export class ShadowGate {
  readonly #inFlight: Uint32Array;
  readonly #limit: number;

  constructor(steps: number, limit = SHADOW_ROWS_IN_FLIGHT) {
    this.#inFlight = new Uint32Array(steps);
    this.#limit = limit;
  }

  /**
   * Takes room for `rows` rows of `step`; false (and nothing taken) when that would pass the bound. With
   * nothing in flight a call always goes, however many rows it has.
   */
  tryAcquire(step: number, rows: number): boolean {
    const now = this.#inFlight[step] ?? 0;
    if (now > 0 && now + rows > this.#limit) return false;
    this.#inFlight[step] = now + rows;
    return true;
  }

  release(step: number, rows: number): void {
    this.#inFlight[step] = Math.max(0, (this.#inFlight[step] ?? 0) - rows);
  }

  /** Shadow rows of `step` in flight now. */
  inFlight(step: number): number {
    return this.#inFlight[step] ?? 0;
  }
}
