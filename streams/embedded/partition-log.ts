/**
 * One partition of an embedded topic: an append-only run of records numbered with Kafka's offsets, an
 * optional retention cap that drops records from the head, and listeners told when records arrive.
 */
import type { Headers, InboundRecord } from '../../pipeline/record.js';

// Dropped head slots are reclaimed in bulk, once they outnumber both this and the live records: each
// compaction copies at most as many records as were dropped since the last one, so appends stay O(1).
const MIN_COMPACTION = 1024;

export class PartitionLog {
  /** records[head] is the oldest retained record; slots before head were dropped by retention. */
  private records: InboundRecord[] = [];
  private head = 0;
  /** The offset of records[0]. */
  private base = 0;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly maxRecords: number,
  ) {}

  /** The offset the next appended record will get (Kafka's high watermark; everything here is committed). */
  get highWatermark(): number {
    return this.base + this.records.length;
  }

  /** The oldest offset still retained. */
  get logStartOffset(): number {
    return this.base + this.head;
  }

  /** Appends without notifying: the caller notifies once per batch of appends (see `notify`). */
  append(key: Buffer | null, value: Buffer | null, headers: Headers, timestamp: number): InboundRecord {
    const record: InboundRecord = {
      topic: this.topic,
      partition: this.partition,
      offset: this.highWatermark,
      key,
      value,
      headers,
      timestamp,
    };
    this.records.push(record);
    if (this.records.length - this.head > this.maxRecords) this.dropHead();
    return record;
  }

  /** Up to `max` records from `from`, or from the log start if retention has already dropped `from`. */
  read(from: number, max: number): InboundRecord[] {
    const start = Math.max(from, this.logStartOffset) - this.base;
    if (start >= this.records.length || max <= 0) return [];
    return this.records.slice(start, max === Infinity ? undefined : start + max);
  }

  /** Listeners run synchronously after appends, so they must only schedule work. Returns the unsubscribe. */
  watch(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  notify(): void {
    for (const listener of this.listeners) listener();
  }

  private dropHead(): void {
    this.head++;
    if (this.head >= MIN_COMPACTION && this.head * 2 >= this.records.length) {
      this.records = this.records.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
  }
}
