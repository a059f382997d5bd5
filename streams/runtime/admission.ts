/**
 * Admission: how many records may be in processing at once. Batches from the source are cut into blocks
 * and queued; blocks are released into the pipeline only while fewer than `maxInflight` records are being
 * processed, and `release(n)` (called once their outcomes are acknowledged) lets more in.
 *
 * Transports hand over batches of any size (a Kafka fetch can hold thousands of records). Starting them all
 * at once would queue them all in the model actors and blow every deadline; admitting them in blocks keeps
 * per-event latency bounded by `maxInflight / throughput`, while the source is paused on the queue's size.
 * Blocks are released one turn of the clock apart (the next macrotask on the production clock, see
 * core/clock.ts) so that model results and I/O interleave with new work.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import type { Clock } from '../../core/clock.js';
import type { RecordBatch } from '../types.js';
import type { TopicPartition } from '../../pipeline/record.js';

export interface AdmissionOptions {
  readonly maxInflight: number;
  readonly blockSize: number;
  /** Spaces block releases one turn apart (`clock.schedule(work)`, no delay). */
  readonly clock: Clock;
}

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class Admission<T extends RecordBatch = RecordBatch> {
  readonly #options: AdmissionOptions;
  readonly #queue: T[] = [];
  #inflight = 0;
  #queued = 0;
  #emit: ((block: T) => void) | undefined;
  #scheduled = false;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** Records released and not yet acknowledged. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Records waiting to be released. */
  get queued(): number {
    return this.#queued;
  }

  /** The operator: batches in, blocks out, as capacity allows. One subscriber at a time. */
  readonly operator: OperatorFunction<T, T> = (batches$) =>
    new Observable<T>((subscriber) => {
      this.#emit = (block) => subscriber.next(block);
      const sub = batches$.subscribe({
        next: (batch) => {
          const { blockSize } = this.#options;
          for (let i = 0; i < batch.records.length; i += blockSize) {
            const records = batch.records.length <= blockSize ? batch.records : batch.records.slice(i, i + blockSize);
            // A block keeps whatever else the batch carries (the stream's read time).
            this.#queue.push(batch.records.length <= blockSize ? batch : { ...batch, records });
          }
          this.#queued += batch.records.length;
          this.#pump();
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        sub.unsubscribe();
        this.#emit = undefined;
      };
    });

  /** `n` released records are done: lets queued blocks in. */
  release(n: number): void {
    this.#inflight -= n;
    this.#pump();
  }

  /** Drops queued blocks of partitions the source no longer owns; returns how many records were dropped. */
  drop(partitions: readonly TopicPartition[]): number {
    const gone = new Set(partitions.map(tpKey));
    let dropped = 0;
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const block = this.#queue[i] as T;
      if (gone.has(tpKey(block))) {
        dropped += block.records.length;
        this.#queue.splice(i, 1);
      }
    }
    this.#queued -= dropped;
    return dropped;
  }

  /** Releases the first block now (if capacity allows) and schedules the next for the clock's next turn. */
  #pump(): void {
    if (this.#scheduled) return;
    const block = this.#queue[0];
    if (block === undefined || this.#emit === undefined) return;
    // Always let one block in when nothing is in flight, however large, or a big block would never enter.
    if (this.#inflight > 0 && this.#inflight + block.records.length > this.#options.maxInflight) return;
    this.#queue.shift();
    this.#queued -= block.records.length;
    this.#inflight += block.records.length;
    this.#emit(block);
    if (this.#queue.length > 0) {
      this.#scheduled = true;
      this.#options.clock.schedule(() => {
        this.#scheduled = false;
        this.#pump();
      });
    }
  }
}
