/**
 * A small actor core: a bounded mailbox. Actors compose it with their own message handling and a lifecycle
 * (core/lifecycle.ts); neither piece knows about models.
 */
/** A queued message. `state` lets a holder cancel it in O(1) without searching the queue. */
export interface MailboxSlot<T> {
  readonly value: T;
  state: 'queued' | 'taken' | 'cancelled';
}

/**
 * A bounded FIFO. Cancelled slots stay in the array as tombstones and are skipped when taken, so cancelling
 * (an aborted request) is O(1); the array is compacted once the consumed prefix dominates it.
 */
export class Mailbox<T> {
  readonly capacity: number;
  #slots: MailboxSlot<T>[] = [];
  // Index of the first slot not yet taken or skipped.
  #head = 0;
  // Queued slots, excluding tombstones: what capacity and `size` count.
  #live = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#live;
  }

  /** Queues `value`, or returns undefined when the mailbox is full. */
  offer(value: T): MailboxSlot<T> | undefined {
    if (this.#live >= this.capacity) return undefined;
    const slot: MailboxSlot<T> = { value, state: 'queued' };
    this.#slots.push(slot);
    this.#live++;
    return slot;
  }

  /** Removes a queued slot; false when it was already taken or cancelled. */
  cancel(slot: MailboxSlot<T>): boolean {
    if (slot.state !== 'queued') return false;
    slot.state = 'cancelled';
    this.#live--;
    return true;
  }

  /** The oldest queued value, if any. */
  peek(): T | undefined {
    this.#skipTombstones();
    return this.#slots[this.#head]?.value;
  }

  /** Removes and returns up to `max` values, oldest first. */
  take(max: number): T[] {
    const out: T[] = [];
    while (out.length < max && this.#head < this.#slots.length) {
      const slot = this.#slots[this.#head++]!;
      if (slot.state !== 'queued') continue;
      slot.state = 'taken';
      this.#live--;
      out.push(slot.value);
    }
    this.#compact();
    return out;
  }

  #skipTombstones(): void {
    while (this.#head < this.#slots.length && this.#slots[this.#head]!.state !== 'queued') this.#head++;
    this.#compact();
  }

  #compact(): void {
    if (this.#head === this.#slots.length) {
      this.#slots = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#head = 0;
    }
  }
}
