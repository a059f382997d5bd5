/**
 * One partition of an embedded topic: an append-only run of records numbered with Kafka's offsets, an
 * optional retention cap that drops records from the head, and listeners told when records arrive.
 *
 * A compacted partition (a changelog's) keeps only the latest record of each key, as Kafka's log cleaner
 * does (tombstones included), so it holds about one record per key however much is written: superseded
 * records are dropped in bulk once they outnumber the live ones, leaving gaps in the offsets.
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
  /** With compaction: each key's latest record (by its bytes), and how many retained records are superseded. */
  private readonly latest: Map<string, InboundRecord> | undefined;
  private superseded = 0;
  /** With compaction: the next offset (offsets no longer follow positions once records are dropped). */
  private next = 0;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly maxRecords: number,
    compacted = false,
  ) {
    if (compacted) this.latest = new Map();
  }

  /** The offset the next appended record will get (Kafka's high watermark; everything here is committed). */
  get highWatermark(): number {
    return this.latest === undefined ? this.base + this.records.length : this.next;
  }

  /** The oldest offset still retained. */
  get logStartOffset(): number {
    if (this.latest !== undefined) return this.records[0]?.offset ?? this.next;
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
    if (this.latest !== undefined) this.compact(record);
    else if (this.records.length - this.head > this.maxRecords) this.dropHead();
    return record;
  }

  /** Up to `max` records from `from`, or from the log start if retention has already dropped `from`. */
  read(from: number, max: number): InboundRecord[] {
    if (this.latest !== undefined) {
      // Offsets have gaps: the first retained record at or after `from`, by binary search.
      let lo = 0;
      let hi = this.records.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.records[mid]!.offset < from) lo = mid + 1;
        else hi = mid;
      }
      return max <= 0 ? [] : this.records.slice(lo, max === Infinity ? undefined : lo + max);
    }
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

  private compact(record: InboundRecord): void {
    this.next = record.offset + 1;
    const latest = this.latest!;
    if (record.key === null) return;
    const key = record.key.toString('latin1');
    if (latest.has(key)) this.superseded++;
    latest.set(key, record);
    if (this.superseded >= MIN_COMPACTION && this.superseded * 2 >= this.records.length) {
      this.records = this.records.filter((r) => r.key === null || latest.get(r.key.toString('latin1')) === r);
      this.superseded = 0;
    }
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
