/**
 * Deadlines of one fixed length, served by a single scheduled action.
 *
 * With one delay, deadlines fall in the order they are added, so a FIFO queue is already sorted: the timer
 * only ever needs to wake for the oldest live entry. Cancelled entries stay in the queue and are skipped
 * when reached. This replaces a timer (and an AbortController) per event on the hot path; time comes from
 * the injected scheduler, so tests run on virtual time.
 */
import type { Subscription } from 'rxjs';
import type { Clock } from './clock.js';

export interface Deadline {
  /** Stops the expiry callback from running. Safe to call more than once, and after expiry. */
  cancel(): void;
}

class Entry implements Deadline {
  constructor(readonly at: number, public onExpire: (() => void) | null) {}

  cancel(): void {
    this.onExpire = null;
  }
}

// Deadlines closer together than this share one timer firing: per-entry precision is not worth a wake-up.
const GRANULARITY_MS = 1;

export class DeadlineQueue {
  readonly #scheduler: Clock;
  readonly #delayMs: number;
  #queue: Entry[] = [];
  /** Index of the first entry not yet expired or skipped. */
  #head = 0;
  #timer: Subscription | undefined;

  constructor(scheduler: Clock, delayMs: number) {
    this.#scheduler = scheduler;
    this.#delayMs = delayMs;
  }

  get delayMs(): number {
    return this.#delayMs;
  }

  /** Runs `onExpire` once `delayMs` has passed, unless the returned deadline is cancelled first. */
  add(onExpire: () => void): Deadline {
    const entry = new Entry(this.#scheduler.now() + this.#delayMs, onExpire);
    this.#queue.push(entry);
    if (this.#timer === undefined) this.#arm(entry.at);
    return entry;
  }

  /**
   * Runs now every deadline that has passed by the clock but whose timer has not fired yet. A thread kept busy
   * by synchronous work (an onnxruntime run on this thread takes as long as the model does) delays its timers,
   * not its clock: a result that arrives after its deadline, before the timer could run, is late all the same.
   * So whoever accepts a result against a deadline calls this first. Costs one clock read when nothing is due.
   */
  expireDue(): void {
    const head = this.#queue[this.#head];
    if (head === undefined || head.at > this.#scheduler.now()) return;
    this.#timer?.unsubscribe();
    this.#timer = undefined;
    this.#expire();
  }

  /** Cancels every pending deadline without running it. */
  clear(): void {
    this.#timer?.unsubscribe();
    this.#timer = undefined;
    for (let i = this.#head; i < this.#queue.length; i++) (this.#queue[i] as Entry).cancel();
    this.#queue = [];
    this.#head = 0;
  }

  #arm(at: number): void {
    const delay = Math.max(GRANULARITY_MS, at - this.#scheduler.now());
    this.#timer = this.#scheduler.schedule(() => this.#expire(), delay);
  }

  #expire(): void {
    this.#timer = undefined;
    const now = this.#scheduler.now();
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const entry = queue[this.#head] as Entry;
      const run = entry.onExpire;
      if (run !== null && entry.at > now) break;
      this.#head++;
      if (run !== null) {
        entry.onExpire = null;
        run();
      }
    }
    // Drop the consumed prefix once it dominates, so the array does not grow without bound.
    if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
    // Skip cancelled entries so the timer wakes for a live one.
    while (this.#head < this.#queue.length && (this.#queue[this.#head] as Entry).onExpire === null) this.#head++;
    const next = this.#queue[this.#head];
    // An expiry callback may have added an entry, and armed the timer already.
    if (next !== undefined && this.#timer === undefined) this.#arm(next.at);
  }
}
