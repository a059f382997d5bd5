/**
 * The dynamic micro-batching policy. Values queue in a bounded mailbox; a batch is dispatched when
 * `maxBatchSize` are queued, or when the oldest queued value has waited `maxDelayMs`, and at most
 * `maxInflightBatches` batches run at once. The timer runs on an injected scheduler so tests use virtual time.
 */
import type { SchedulerLike, Subscription } from 'rxjs';
import { Mailbox, type MailboxSlot } from './actor.js';

export interface BatchPolicy {
  readonly maxBatchSize: number;
  readonly maxDelayMs: number;
  /** Batches running at once: two keep a worker fed while the previous result travels back. */
  readonly maxInflightBatches: number;
  readonly mailboxCapacity: number;
}

interface Queued<T> {
  readonly value: T;
  /** Scheduler time when the value was queued: the oldest one's age decides the delay trigger. */
  readonly at: number;
}

/** A handle to a queued value, to cancel it before dispatch. */
export type BatchTicket<T> = MailboxSlot<Queued<T>>;

export class MicroBatcher<T> {
  readonly #policy: BatchPolicy;
  readonly #scheduler: SchedulerLike;
  readonly #dispatch: (batch: T[]) => Promise<void>;
  readonly #mailbox: Mailbox<Queued<T>>;
  #inflight = 0;
  // The pending delay timer and the scheduler time it fires at; undefined when none is armed.
  #timer: Subscription | undefined;
  #timerAt = 0;
  // Set by drain(): dispatch whatever is queued without waiting for the delay.
  #draining = false;
  #idleWaiters: (() => void)[] = [];

  /** `dispatch` must not reject: it owns the batch's outcome, including every error. */
  constructor(policy: BatchPolicy, scheduler: SchedulerLike, dispatch: (batch: T[]) => Promise<void>) {
    this.#policy = policy;
    this.#scheduler = scheduler;
    this.#dispatch = dispatch;
    this.#mailbox = new Mailbox<Queued<T>>(policy.mailboxCapacity);
  }

  get queued(): number {
    return this.#mailbox.size;
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** Queues `value` (possibly dispatching at once); undefined when the mailbox is full. */
  offer(value: T): BatchTicket<T> | undefined {
    const ticket = this.#mailbox.offer({ value, at: this.#scheduler.now() });
    if (ticket !== undefined) this.#pump();
    return ticket;
  }

  /** Removes a value that has not been dispatched yet; false when it already has been. */
  cancel(ticket: BatchTicket<T>): boolean {
    const removed = this.#mailbox.cancel(ticket);
    if (removed) {
      if (this.#mailbox.size === 0) this.#disarm();
      this.#notifyIfIdle();
    }
    return removed;
  }

  /** Removes and returns everything queued, for an owner that is failing its pending work. */
  takeAll(): T[] {
    const values = this.#mailbox.take(this.#mailbox.size).map((q) => q.value);
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
    const { maxBatchSize, maxDelayMs, maxInflightBatches } = this.#policy;
    while (this.#mailbox.size > 0) {
      const oldest = this.#mailbox.peek()!;
      const deadline = oldest.at + maxDelayMs;
      const due = this.#draining || this.#mailbox.size >= maxBatchSize || this.#scheduler.now() >= deadline;
      if (!due) {
        this.#arm(deadline);
        return;
      }
      // Due but no free slot: the next completion pumps again, so no timer is needed meanwhile.
      if (this.#inflight >= maxInflightBatches) {
        this.#disarm();
        return;
      }
      this.#run(this.#mailbox.take(maxBatchSize).map((q) => q.value));
    }
    this.#disarm();
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
    return this.#mailbox.size === 0 && this.#inflight === 0;
  }

  #notifyIfIdle(): void {
    if (!this.#idle() || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
