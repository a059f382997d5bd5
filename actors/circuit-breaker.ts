/**
 * A per-model-version circuit breaker: a pure state machine on the injected clock. The model
 * actor owns one and tells it how each batch ended; the step executor tells it about step timeouts.
 *
 *   closed     rows queue and batches run. `failureThreshold` consecutive failures (a batch that produced no
 *              output and failed with a model error after its retry, or a step timeout) open it; any success
 *              resets the count.
 *   open       rows are refused at once with MODEL_CIRCUIT_OPEN, without queueing: a model that keeps failing
 *              or timing out is not given more work to fail on, and its callers' joins are not held for it.
 *   half-open  `coolDownMs` after opening. New rows queue again, and ONE batch (the probe) runs: its success
 *              closes the breaker, its failure re-opens it for another cool-down. Until the probe ends, other
 *              batches and new rows are refused. A probe that ends neither way (only bad-input rows) frees
 *              the probe slot for the next batch.
 *
 * The move from open to half-open is made when the state is next read (a row arrives, or `state` is asked),
 * not by a timer: nothing is scheduled, so an idle model keeps no timer alive and a closed actor leaves none.
 * The gauge therefore shows `open` until the first row after the cool-down.
 */
import type { Clock } from '../core/clock.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

/** The numbers of the `circuit_state` gauge: 0 closed, 1 open, 2 half-open. */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CircuitState, number>> = { closed: 0, open: 1, 'half-open': 2 };

export interface CircuitBreakerPolicy {
  /** Consecutive failures or timeouts that open the breaker (≥ 1). */
  readonly failureThreshold: number;
  /** Milliseconds an open breaker waits before letting one probe batch through. */
  readonly coolDownMs: number;
}

export interface CircuitTransition {
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** Consecutive failures counted when it moved (what opened it). */
  readonly failures: number;
}

export class CircuitBreaker {
  readonly #policy: CircuitBreakerPolicy;
  readonly #clock: Clock;
  readonly #onTransition: (transition: CircuitTransition) => void;
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probeOut = false;

  constructor(policy: CircuitBreakerPolicy, clock: Clock, onTransition: (transition: CircuitTransition) => void = () => {}) {
    this.#policy = policy;
    this.#clock = clock;
    this.#onTransition = onTransition;
  }

  /** The state now (an open breaker whose cool-down has passed moves to half-open here). */
  get state(): CircuitState {
    if (this.#state === 'open' && this.#clock.now() - this.#openedAt >= this.#policy.coolDownMs) this.#move('half-open');
    return this.#state;
  }

  /** Consecutive failures counted so far. */
  get failures(): number {
    return this.#failures;
  }

  /** Whether new rows may queue: closed, or half-open with its probe not yet out. */
  get accepting(): boolean {
    const state = this.state;
    return state === 'closed' || (state === 'half-open' && !this.#probeOut);
  }

  /** A batch is about to run: true if it may. In half-open the first batch to ask becomes the probe. */
  tryRun(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.#probeOut) return false;
    this.#probeOut = true;
    return true;
  }

  /** A batch produced outputs: the model works. */
  success(): void {
    this.#failures = 0;
    // A batch that was already running when the breaker opened proves nothing about the cool-down: only the
    // probe (or any batch once half-open) closes it.
    if (this.#state === 'half-open') this.#move('closed');
  }

  /** A batch failed with a model error after its retry, or a step timed out. */
  failure(): void {
    this.#failures++;
    if (this.#state === 'half-open') this.#open();
    else if (this.#state === 'closed' && this.#failures >= this.#policy.failureThreshold) this.#open();
  }

  /** A batch ended neither way (every row was bad input): the half-open probe slot is free again. */
  neutral(): void {
    if (this.#state === 'half-open') this.#probeOut = false;
  }

  #open(): void {
    this.#openedAt = this.#clock.now();
    this.#move('open');
  }

  #move(to: CircuitState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#probeOut = false;
    const failures = this.#failures;
    if (to === 'closed') this.#failures = 0;
    this.#onTransition({ from, to, failures });
  }
}
