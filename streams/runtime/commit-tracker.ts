/**
 * Ordered offset commits for at-least-once delivery.
 *
 * Records of a partition enter the pipeline in offset order but finish in any order (models batch, joins
 * wait, the sink acknowledges whenever). Kafka stores one offset per partition, meaning "everything before
 * this is done", so the tracker commits a partition only up to its first unacknowledged record: a crash
 * then replays the unfinished records (and perhaps some finished ones after them) and never skips one.
 *
 * Per partition the tracked offsets wait in a growable ring buffer, in increasing order. An ack finds its
 * slot in O(1) when offsets are contiguous (the usual case) and by binary search across gaps (compaction,
 * transaction markers); the head advances past acknowledged slots, so each offset costs O(1) amortised.
 */
import type { TopicPartition } from '../../pipeline/record.js';

export type CommitOffset = TopicPartition & { readonly offset: number };

const INITIAL_CAPACITY = 16;

/** The pending offsets of one partition. */
class PartitionWindow {
  /** Ring buffer of tracked, not yet retired offsets, oldest at `head`; capacity is a power of two. */
  private offsets = new Float64Array(INITIAL_CAPACITY);
  private acked = new Uint8Array(INITIAL_CAPACITY);
  private head = 0;
  private size = 0;
  private lastTracked = -1;
  /** Tracked offsets not yet acknowledged. */
  unacked = 0;
  /** The next offset to commit (last contiguously acknowledged + 1); undefined until an ack advances it. */
  next: number | undefined;
  /** Whether `next` moved since it was last reported. */
  dirty = false;

  constructor(readonly tp: TopicPartition) {}

  track(offset: number): void {
    if (!Number.isSafeInteger(offset) || offset <= this.lastTracked) {
      throw new RangeError(`offset ${offset} tracked after ${this.lastTracked} on ${this.tp.topic}:${this.tp.partition}: offsets must increase`);
    }
    if (this.size === this.offsets.length) this.grow();
    const slot = (this.head + this.size) & (this.offsets.length - 1);
    this.offsets[slot] = offset;
    this.acked[slot] = 0;
    this.size++;
    this.unacked++;
    this.lastTracked = offset;
  }

  /** True when the ack was for a tracked, not yet acknowledged offset. */
  ack(offset: number): boolean {
    const index = this.indexOf(offset);
    if (index < 0) return false;
    const slot = (this.head + index) & (this.offsets.length - 1);
    if (this.acked[slot] === 1) return false;
    this.acked[slot] = 1;
    this.unacked--;
    if (index === 0) this.advance();
    return true;
  }

  private advance(): void {
    const mask = this.offsets.length - 1;
    while (this.size > 0 && this.acked[this.head] === 1) {
      this.next = (this.offsets[this.head] ?? 0) + 1;
      this.head = (this.head + 1) & mask;
      this.size--;
      this.dirty = true;
    }
  }

  /** The logical index (0 = oldest) of `offset` in the window, or -1. */
  private indexOf(offset: number): number {
    if (this.size === 0) return -1;
    const mask = this.offsets.length - 1;
    const at = (i: number): number => this.offsets[(this.head + i) & mask] ?? Number.NaN;
    const first = at(0);
    if (offset < first || offset > this.lastTracked) return -1;
    // Without gaps the offset sits at its distance from the first one; only gaps need the search.
    const guess = offset - first;
    if (guess < this.size && at(guess) === offset) return guess;
    let lo = 0;
    let hi = Math.min(this.size - 1, guess);
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const value = at(mid);
      if (value === offset) return mid;
      if (value < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private grow(): void {
    const capacity = this.offsets.length * 2;
    const offsets = new Float64Array(capacity);
    const acked = new Uint8Array(capacity);
    const mask = this.offsets.length - 1;
    for (let i = 0; i < this.size; i++) {
      const slot = (this.head + i) & mask;
      offsets[i] = this.offsets[slot] ?? 0;
      acked[i] = this.acked[slot] ?? 0;
    }
    this.offsets = offsets;
    this.acked = acked;
    this.head = 0;
  }
}

export class CommitTracker {
  private readonly partitions = new Map<string, Map<number, PartitionWindow>>();
  /** Partitions whose commit point moved since the last `committable()`: saves a scan of all of them. */
  private readonly dirty = new Set<PartitionWindow>();
  private totalUnacked = 0;

  /** Records that a record entered the pipeline. Offsets must increase per partition until `revoke`. */
  track(tp: TopicPartition, offset: number): void {
    this.window(tp, true).track(offset);
    this.totalUnacked++;
  }

  /**
   * Records that a record's outcome was acknowledged by the sink. Acks may come in any order; duplicate
   * acks and acks for untracked offsets or revoked partitions are ignored (the return value says which).
   */
  ack(tp: TopicPartition, offset: number): boolean {
    const window = this.window(tp, false);
    if (window === undefined || !window.ack(offset)) return false;
    this.totalUnacked--;
    if (window.dirty) this.dirty.add(window);
    return true;
  }

  /** For each partition whose commit point moved since the last call: the next offset to commit. */
  committable(): CommitOffset[] {
    const result: CommitOffset[] = [];
    for (const window of this.dirty) {
      if (window.next !== undefined) result.push({ topic: window.tp.topic, partition: window.tp.partition, offset: window.next });
      window.dirty = false;
    }
    this.dirty.clear();
    return result;
  }

  /** Tracked but unacknowledged records: of one partition, or of all. O(1), for backpressure checks. */
  inflight(tp?: TopicPartition): number {
    if (tp === undefined) return this.totalUnacked;
    return this.window(tp, false)?.unacked ?? 0;
  }

  /** The partitions being tracked. */
  tracked(): TopicPartition[] {
    return [...this.partitions.values()].flatMap((byPartition) => [...byPartition.values()].map((w) => w.tp));
  }

  /**
   * Forgets a partition (on revocation). Returns the commit it still owes, if its commit point moved since
   * it was last reported by `committable()`, so the caller can commit before giving the partition up.
   * Unacknowledged records are dropped from the in-flight counts; their late acks are ignored.
   */
  revoke(tp: TopicPartition): CommitOffset | undefined {
    const byPartition = this.partitions.get(tp.topic);
    const window = byPartition?.get(tp.partition);
    if (byPartition === undefined || window === undefined) return undefined;
    byPartition.delete(tp.partition);
    if (byPartition.size === 0) this.partitions.delete(tp.topic);
    this.dirty.delete(window);
    this.totalUnacked -= window.unacked;
    return window.dirty && window.next !== undefined ? { topic: tp.topic, partition: tp.partition, offset: window.next } : undefined;
  }

  private window(tp: TopicPartition, create: true): PartitionWindow;
  private window(tp: TopicPartition, create: false): PartitionWindow | undefined;
  private window(tp: TopicPartition, create: boolean): PartitionWindow | undefined {
    let byPartition = this.partitions.get(tp.topic);
    let window = byPartition?.get(tp.partition);
    if (window !== undefined || !create) return window;
    if (byPartition === undefined) {
      byPartition = new Map();
      this.partitions.set(tp.topic, byPartition);
    }
    // Copied so a record passed as `tp` is not kept alive by the tracker.
    window = new PartitionWindow({ topic: tp.topic, partition: tp.partition });
    byPartition.set(tp.partition, window);
    return window;
  }
}
