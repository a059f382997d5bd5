/**
 * The one lifecycle: a typed state that the model actor, the decision stream and the daemon each own one of.
 *
 *   starting → running → draining → stopped
 *   starting → draining                         (stopped before it ever ran)
 *   starting | running | draining → failed
 *
 * Transitions are checked: `moveTo` returns false, and changes nothing, for any other (a stop racing a
 * failure, a second stop). `stopped` and `failed` are terminal; the state stream completes on them, so
 * pipelines can stop on it.
 *
 * A stop is raced against a forced-stop timer (`stopWithin`): the timer covers the whole stop (drain, commit
 * and close). When it fires the stop ends at once, as `stopped` (a timed-out stop is still a stop that was
 * asked for, not a fault: a `failed` state is for a component that broke), reporting that it was forced; the
 * work left running is abandoned with a log line by the owner, and its abort signal fires so cancellable work
 * (a sink retry) ends. Whatever was not committed is read again from the committed offset by the partition's
 * next owner: at-least-once.
 */
import { BehaviorSubject, type Observable, type Subscription } from 'rxjs';
import type { Clock } from './clock.js';
import { ForcedStopError } from './errors.js';

/** The daemon's (and every actor's) lifecycle: starting → running → draining → stopped, or failed from any state but stopped. */
export type LifecycleState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** Every state, in lifecycle order (for a gauge per state). */
export const LIFECYCLE_STATES: readonly LifecycleState[] = ['starting', 'running', 'draining', 'stopped', 'failed'];

const NEXT: Readonly<Record<LifecycleState, readonly LifecycleState[]>> = {
  starting: ['running', 'draining', 'failed'],
  running: ['draining', 'failed'],
  draining: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

/** Whether `from → to` is a legal transition. */
export const canMove = (from: LifecycleState, to: LifecycleState): boolean => NEXT[from].includes(to);

/** The state as a value and as a stream (current value first) that completes on a terminal state. */
export class Lifecycle {
  readonly #state = new BehaviorSubject<LifecycleState>('starting');

  get state(): LifecycleState {
    return this.#state.value;
  }

  get state$(): Observable<LifecycleState> {
    return this.#state.asObservable();
  }

  /** Accepting new work: starting (work queues while warming up) or running. */
  get accepting(): boolean {
    const s = this.#state.value;
    return s === 'starting' || s === 'running';
  }

  /** stopped or failed: nothing moves any more. */
  get terminal(): boolean {
    return NEXT[this.#state.value].length === 0;
  }

  /** Moves to `next` if the transition is legal and returns whether it moved; an illegal one changes nothing. */
  moveTo(next: LifecycleState): boolean {
    const current = this.#state.value;
    if (!canMove(current, next)) return false;
    this.#state.next(next);
    if (NEXT[next].length === 0) this.#state.complete();
    return true;
  }
}

export type StopOutcome<T> = { readonly forced: false; readonly value: T } | { readonly forced: true };

export interface StopWithinOptions {
  readonly clock: Clock;
  /** The forced-stop timer, in milliseconds from the call. */
  readonly timeoutMs: number;
  /** Aborted (reason: ForcedStopError) when the timer fires; `stop` gets its signal. */
  readonly controller: AbortController;
  /**
   * Runs when the timer fires, before the abort: detach whatever the abandoned work could still reach (a
   * subscription), so the abort's rejections land nowhere.
   */
  readonly onForced?: () => void;
}

/**
 * Runs a whole stop raced against a forced-stop timer on the clock. Resolves `{ forced: false, value }` when
 * `stop` finishes first (its rejection passes through), `{ forced: true }` when the timer does; the abandoned
 * stop's later result or rejection is ignored.
 */
export async function stopWithin<T>(options: StopWithinOptions, stop: (signal: AbortSignal) => Promise<T>): Promise<StopOutcome<T>> {
  const { clock, timeoutMs, controller, onForced } = options;
  let timer: Subscription | undefined;
  const forced = new Promise<StopOutcome<T>>((resolve) => {
    timer = clock.schedule(() => {
      onForced?.();
      controller.abort(new ForcedStopError(`stop did not finish within ${timeoutMs} ms`, { details: { timeoutMs } }));
      resolve({ forced: true });
    }, timeoutMs);
  });
  const finished = stop(controller.signal).then((value): StopOutcome<T> => ({ forced: false, value }));
  // Once forced, the stop is abandoned: whatever it ends with later is nobody's to handle.
  finished.catch(() => undefined);
  try {
    return await Promise.race([finished, forced]);
  } finally {
    timer?.unsubscribe();
  }
}
