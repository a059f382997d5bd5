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
