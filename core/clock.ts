/**
 * The production scheduler: RxJS's asyncScheduler for timers, with a sub-millisecond clock. asyncScheduler's
 * own `now()` is Date.now(), whose whole milliseconds are too coarse for per-stage latencies of a few ms.
 */
import { asyncScheduler, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';

export const preciseScheduler: SchedulerLike = {
  now: () => performance.now(),
  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T): Subscription {
    return asyncScheduler.schedule(work, delay, state);
  },
};

/**
 * A duration as a decision reports it: whole microseconds. performance.now() differences carry float noise
 * to 15 decimals, which costs bytes and encoding time in every decision and means nothing.
 */
export const toMicros = (ms: number): number => Math.round(ms * 1000) / 1000;
