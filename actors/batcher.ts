/**
 * The dynamic micro-batching policy. Values queue in a bounded mailbox; a batch is dispatched when
 * `maxBatchSize` rows are queued, or when the oldest queued value has waited `maxDelayMs`, and at most
 * `maxInflightBatches` batches run at once. The timer runs on an injected scheduler so tests use virtual time.
 *
 * A queued value may hold many rows (a caller's whole block): sizes and capacity count rows, and a value
 * larger than the space left in a batch is split, its head dispatched and its rest left first in line.
 */
import type { Subscription } from 'rxjs';
import type { Clock } from '../core/clock.js';
import { Mailbox, type MailboxSlot } from './actor.js';

export interface BatchPolicy {
  readonly maxBatchSize: number;
  readonly maxDelayMs: number;
  /** Batches running at once: two keep a worker fed while the previous result travels back. */
  readonly maxInflightBatches: number;
  /** Rows queued at most. */
  readonly mailboxCapacity: number;
}

/** How the batcher measures and cuts values: one row each unless told otherwise. */
export interface Divisible<T> {
  size(value: T): number;
  /** Splits off the first `rows` rows of `value` (0 < rows < size): [head, rest]. */
  split(value: T, rows: number): readonly [T, T];
}

interface Queued<T> {
  /** Replaced by its rest when the head of a split value is dispatched. */
  value: T;
  /** Scheduler time when the value was queued: the oldest one's age decides the delay trigger. */
  readonly at: number;
}

/** A handle to a queued value, to cancel it (or what is left of it) before dispatch. */
export type BatchTicket<T> = MailboxSlot<Queued<T>>;

const singleRows: Divisible<never> = {
  size: () => 1,
  split: () => { throw new Error('a single row cannot be split'); },
};

export class MicroBatcher<T> {
  readonly #policy: BatchPolicy;
  readonly #scheduler: Clock;
  readonly #dispatch: (batch: T[]) => Promise<void>;
  readonly #divisible: Divisible<T>;
  readonly #mailbox = new Mailbox<Queued<T>>(Number.MAX_SAFE_INTEGER);
  /** Rows queued: what the capacity bounds and `maxBatchSize` is compared with. */
  #rows = 0;
  #inflight = 0;
  // The pending delay timer and the scheduler time it fires at; undefined when none is armed.
  #timer: Subscription | undefined;
  #timerAt = 0;
  // Set by drain(): dispatch whatever is queued without waiting for the delay.
  #draining = false;
  #idleWaiters: (() => void)[] = [];
  readonly #onWaited: ((ms: number) => void) | undefined;

  /**
   * `dispatch` must not reject: it owns the batch's outcome, including every error. `onWaited` is told, once
   * per queued value, how long (scheduler ms) it waited from `offer` until its last row was dispatched.
   */
  constructor(policy: BatchPolicy, scheduler: Clock, dispatch: (batch: T[]) => Promise<void>, divisible?: Divisible<T>, onWaited?: (ms: number) => void) {
    this.#policy = policy;
    this.#scheduler = scheduler;
    this.#dispatch = dispatch;
    this.#divisible = divisible ?? singleRows;
    this.#onWaited = onWaited;
  }

  /** Rows waiting (not those in running batches). */
  get queued(): number {
    return this.#rows;
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** Queues `value` (possibly dispatching at once); undefined when its rows do not fit in the mailbox. */
  offer(value: T): BatchTicket<T> | undefined {
    const size = this.#divisible.size(value);
    if (this.#rows + size > this.#policy.mailboxCapacity) return undefined;
    const ticket = this.#mailbox.offer({ value, at: this.#scheduler.now() });
    if (ticket === undefined) return undefined;
    this.#rows += size;
    this.#pump();
    return ticket;
  }

  /** Removes what is left of a value that has not been fully dispatched; false when nothing was left. */
  cancel(ticket: BatchTicket<T>): boolean {
    const removed = this.#mailbox.cancel(ticket);
    if (removed) {
      this.#rows -= this.#divisible.size(ticket.value.value);
      if (this.#mailbox.size === 0) this.#disarm();
      this.#notifyIfIdle();
    }
    return removed;
  }

  /** Removes and returns everything queued, for an owner that is failing its pending work. */
  takeAll(): T[] {
    const values = this.#mailbox.take(this.#mailbox.size).map((q) => q.value);
    this.#rows = 0;
    this.#disarm();
    this.#notifyIfIdle();
    return values;
  }

  /** Dispatches everything queued without further delay; resolves once nothing is queued or running. */
  drain(): Promise<void> {
    this.#draining = true;
    this.#pump();
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #pump(): void {
    const { maxDelayMs, maxInflightBatches, maxBatchSize } = this.#policy;
    while (this.#rows > 0) {
      const oldest = this.#mailbox.peek()!;
      const deadline = oldest.at + maxDelayMs;
      const due = this.#draining || this.#rows >= maxBatchSize || this.#scheduler.now() >= deadline;
      if (!due) {
        this.#arm(deadline);
        return;
      }
      // Due but no free slot: the next completion pumps again, so no timer is needed meanwhile.
      if (this.#inflight >= maxInflightBatches) {
        this.#disarm();
        return;
      }
      this.#run(this.#takeBatch());
    }
    this.#disarm();
  }

  /** Up to maxBatchSize rows, oldest first, splitting the last value if it does not fit whole. */
  #takeBatch(): T[] {
    const batch: T[] = [];
    let room = this.#policy.maxBatchSize;
    while (room > 0) {
      const head = this.#mailbox.peek();
      if (head === undefined) break;
      const size = this.#divisible.size(head.value);
      if (size <= room) {
        this.#mailbox.take(1);
        // The value's last rows leave the mailbox now: its wait ends here (a split head left earlier).
        this.#onWaited?.(this.#scheduler.now() - head.at);
        batch.push(head.value);
        room -= size;
        this.#rows -= size;
      } else {
        const [first, rest] = this.#divisible.split(head.value, room);
        head.value = rest;
        batch.push(first);
        this.#rows -= room;
        room = 0;
      }
    }
    return batch;
  }

  #run(batch: T[]): void {
    this.#inflight++;
    const done = (): void => {
      this.#inflight--;
      this.#pump();
      this.#notifyIfIdle();
    };
    this.#dispatch(batch).then(done, done);
  }

  #arm(at: number): void {
    if (this.#timer !== undefined && this.#timerAt === at) return;
    this.#disarm();
    this.#timerAt = at;
    this.#timer = this.#scheduler.schedule(() => {
      this.#timer = undefined;
      this.#pump();
    }, Math.max(0, at - this.#scheduler.now()));
  }

  #disarm(): void {
    this.#timer?.unsubscribe();
    this.#timer = undefined;
  }

  #idle(): boolean {
    return this.#rows === 0 && this.#inflight === 0;
  }

  #notifyIfIdle(): void {
    if (!this.#idle() || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
