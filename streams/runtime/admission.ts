/**
 * Admission: how many records may be in processing at once. Batches from the source are cut into chunks
 * and queued; chunks are released into the pipeline only while fewer than `maxInflight` records are being
 * processed, and `release(n)` (called once their outcomes are acknowledged) lets more in.
 *
 * Transports hand over batches of any size (a Kafka fetch can hold thousands of records). Starting them all
 * at once would queue them all in the model actors and blow every deadline; admitting them in chunks keeps
 * per-event latency bounded by `maxInflight / throughput`, while the source is paused on the queue's size.
 * Chunks are released one turn of the clock apart (the next macrotask on the production clock, see
 * core/clock.ts) so that model results and I/O interleave with new work.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import type { Clock } from '../../core/clock.js';
import type { RecordBatch } from '../types.js';
import type { TopicPartition } from '../../pipeline/record.js';

export interface AdmissionOptions {
  readonly maxInflight: number;
  readonly chunkSize: number;
  /** Spaces chunk releases one turn apart (`clock.schedule(work)`, no delay). */
  readonly clock: Clock;
}

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class Admission<T extends RecordBatch = RecordBatch> {
  readonly #options: AdmissionOptions;
  readonly #queue: T[] = [];
  #inflight = 0;
  #queued = 0;
  #emit: ((chunk: T) => void) | undefined;
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

  /** The operator: batches in, chunks out, as capacity allows. One subscriber at a time. */
  readonly operator: OperatorFunction<T, T> = (batches$) =>
    new Observable<T>((subscriber) => {
      this.#emit = (chunk) => subscriber.next(chunk);
      const sub = batches$.subscribe({
        next: (batch) => {
          const { chunkSize } = this.#options;
          for (let i = 0; i < batch.records.length; i += chunkSize) {
            const records = batch.records.length <= chunkSize ? batch.records : batch.records.slice(i, i + chunkSize);
            // A chunk keeps whatever else the batch carries (the stream's read time).
            this.#queue.push(batch.records.length <= chunkSize ? batch : { ...batch, records });
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

  /** `n` released records are done: lets queued chunks in. */
  release(n: number): void {
    this.#inflight -= n;
    this.#pump();
  }

  /** Drops queued chunks of partitions the source no longer owns; returns how many records were dropped. */
  drop(partitions: readonly TopicPartition[]): number {
    const gone = new Set(partitions.map(tpKey));
    let dropped = 0;
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const chunk = this.#queue[i] as T;
      if (gone.has(tpKey(chunk))) {
        dropped += chunk.records.length;
        this.#queue.splice(i, 1);
      }
    }
    this.#queued -= dropped;
    return dropped;
  }

  /** Releases the first chunk now (if capacity allows) and schedules the next for the clock's next turn. */
  #pump(): void {
    if (this.#scheduled) return;
    const chunk = this.#queue[0];
    if (chunk === undefined || this.#emit === undefined) return;
    // Always let one chunk in when nothing is in flight, however large, or a big chunk would never enter.
    if (this.#inflight > 0 && this.#inflight + chunk.records.length > this.#options.maxInflight) return;
    this.#queue.shift();
    this.#queued -= chunk.records.length;
    this.#inflight += chunk.records.length;
    this.#emit(chunk);
    if (this.#queue.length > 0) {
      this.#scheduled = true;
      this.#options.clock.schedule(() => {
        this.#scheduled = false;
        this.#pump();
      });
    }
  }
}
