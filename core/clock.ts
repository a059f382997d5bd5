/**
 * The one clock: an RxJS `SchedulerLike`, named `Clock`. It reads time (`now()`, milliseconds) and runs timers
 * (`schedule(work, delayMs)`); every timer and time read in the logic goes through one, so tests run on
 * virtual time (test/helpers/manual-scheduler.ts, rxjs VirtualTimeScheduler/TestScheduler).
 *
 * A zero (or absent) delay means "on the next turn of the event loop": that is how the logic yields to I/O
 * (admission between blocks, the Kafka source before awaiting its commits). On the production clock that is
 * a `setImmediate`, not a timer: Node clamps a 0 ms timer to 1 ms, which between blocks of a busy stream would
 * cap throughput; on a virtual clock it is an action due now, run when the test advances time.
 */
import { asyncScheduler, Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';

/** Time in milliseconds (`now()`) and timers (`schedule(work, delayMs, state)`): an RxJS scheduler. */
export type Clock = SchedulerLike;

/**
 * An action due on the next turn of the event loop. Rescheduled with a positive delay (recursive scheduling,
 * `this.schedule(state, ms)` inside the work) it hands over to asyncScheduler, as a child of this action so
 * one unsubscribe cancels whatever is pending.
 */
class NextTurnAction<T> extends Subscription implements SchedulerAction<T> {
  readonly #work: (this: SchedulerAction<T>, state?: T) => void;

  constructor(work: (this: SchedulerAction<T>, state?: T) => void) {
    super();
    this.#work = work;
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    if (delay > 0) {
      const later = asyncScheduler.schedule(this.#work, delay, state);
      this.add(later);
      return later;
    }
    const pending = new Subscription(() => clearImmediate(handle));
    const handle = setImmediate(() => {
      this.remove(pending);
      this.#work.call(this, state);
    });
    this.add(pending);
    return this;
  }
}

/**
 * The production clock: sub-millisecond `now()` (performance.now(); asyncScheduler's own is Date.now(), whose
 * whole milliseconds are too coarse for per-stage latencies of a few ms), asyncScheduler's timers for positive
 * delays, and the next macrotask (setImmediate) for a zero delay.
 */
export const preciseScheduler: Clock = {
  now: () => performance.now(),
  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    if (delay > 0) return asyncScheduler.schedule(work, delay, state);
    const action = new NextTurnAction(work);
    action.schedule(state, 0);
    return action;
  },
};

/** Resolves on the clock's next turn (a yield to I/O, not a delay): `clock.schedule(work)` with no delay. */
export function nextTurn(clock: Clock): Promise<void> {
  return new Promise((resolve) => { clock.schedule(() => resolve()); });
}

/**
 * Resolves after `ms` on the clock; rejects with the signal's reason as soon as it aborts (the timer is
 * cancelled), or at once if it already has.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason as Error);
    const onAbort = (): void => { timer.unsubscribe(); reject(signal?.reason as Error); };
    const timer = clock.schedule(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A duration as a decision reports it: milliseconds, rounded to whole microseconds (3 decimals). Clock
 * differences carry float noise to 15 decimals, which costs bytes and encoding time in every decision and
 * means nothing.
 */
export const roundToMicros = (ms: number): number => Math.round(ms * 1000) / 1000;
