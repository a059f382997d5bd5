/**
 * Where each unanswered event sits in the input topic (partition and offset), so that a drain can tell an
 * event the broker has deleted, which can never be answered, from one still waiting to be read. The load
 * producer picks each event's partition here, with kafkajs's own default partitioner, so the spread over
 * partitions is what the producer would choose anyway; the broker's acknowledgement gives each partition's
 * base offset, and kafkajs keeps the order of a partition's messages within a send.
 */
import { kafkajsPartitioner } from '../retention.js';

/** Sent, not acknowledged yet. */
const IN_FLIGHT = -1;
/** The send failed: the broker never had it. */
const REJECTED = -2;
/** Partition and offset packed into one number (offsets stay far below 2^32 in a bench run). */
const SPAN = 2 ** 32;

export interface SendAck {
  readonly partition: number;
  readonly baseOffset?: string;
}

export interface Placement {
  /** Of the events asked about: offset below their partition's log start offset. */
  readonly deleted: number;
  readonly neverAccepted: number;
}

export class OffsetBook {
  readonly #where = new Map<string, number>();
  readonly #partitionOf: (key: string) => number;

  constructor(partitions: number) {
    this.#partitionOf = kafkajsPartitioner(partitions);
  }

  /** Events being sent, with the partition each goes to. */
  assign(events: ReadonlyArray<{ readonly id: string; readonly key: string }>): number[] {
    return events.map((e) => {
      this.#where.set(e.id, IN_FLIGHT);
      return this.#partitionOf(e.key);
    });
  }

  accepted(events: ReadonlyArray<{ readonly id: string }>, partitions: readonly number[], acks: readonly SendAck[]): void {
    const next = new Map<number, number>();
    for (const a of acks) if (a.baseOffset !== undefined) next.set(a.partition, Number(a.baseOffset));
    events.forEach((e, i) => {
      const p = partitions[i] ?? 0;
      const offset = next.get(p);
      if (offset === undefined) return;
      next.set(p, offset + 1);
      // An output can be read before the acknowledgement is: the event is answered already.
      if (this.#where.has(e.id)) this.#where.set(e.id, p * SPAN + offset);
    });
  }

  rejected(events: ReadonlyArray<{ readonly id: string }>): void {
    for (const e of events) if (this.#where.has(e.id)) this.#where.set(e.id, REJECTED);
  }

  answered(id: string): void {
    this.#where.delete(id);
  }

  /** Events sent and not answered yet. */
  get size(): number {
    return this.#where.size;
  }

  place(pending: Iterable<string>, logStart: ReadonlyMap<number, number>): Placement {
    let deleted = 0;
    let neverAccepted = 0;
    for (const id of pending) {
      const at = this.#where.get(id);
      if (at === undefined || at === IN_FLIGHT) continue;
      if (at === REJECTED) {
        neverAccepted++;
        continue;
      }
      const partition = Math.floor(at / SPAN);
      if (at - partition * SPAN < (logStart.get(partition) ?? 0)) deleted++;
    }
    return { deleted, neverAccepted };
  }
}
