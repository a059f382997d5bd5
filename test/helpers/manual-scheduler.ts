/**
 * A scheduler whose clock moves only when a test says so. `advance(ms)` runs every action due by then, in
 * time order, with `now()` set to each action's due time: virtual time for windows, batching and timeouts.
 */
import { Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';

interface Pending {
  at: number;
  seq: number;
  run: () => void;
  sub: Subscription;
}

export class ManualScheduler implements SchedulerLike {
  #now = 0;
  #seq = 0;
  #pending: Pending[] = [];

  now(): number {
    return this.#now;
  }

  get pendingCount(): number {
    return this.#pending.filter((p) => !p.sub.closed).length;
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    const enqueue = (s: T | undefined, d: number): Subscription => {
      const action = new Subscription() as Subscription & SchedulerAction<T>;
      action.schedule = (nextState?: T, nextDelay = 0): Subscription => enqueue(nextState, nextDelay);
      this.#pending.push({ at: this.#now + d, seq: this.#seq++, run: () => work.call(action, s), sub: action });
      return action;
    };
    return enqueue(state, delay);
  }

  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const due = this.#pending
        .filter((p) => !p.sub.closed && p.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.#pending = this.#pending.filter((p) => p !== due);
      this.#now = due.at;
      due.sub.unsubscribe();
      due.run();
    }
    this.#pending = this.#pending.filter((p) => !p.sub.closed);
    this.#now = target;
  }
}
