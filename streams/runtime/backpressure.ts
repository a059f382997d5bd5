/**
 * Which partitions the source is told to pause, and when they resume: backpressure, halts and the
 * operator's pause, kept apart so one never undoes another.
 *
 * Backpressure starts at the source: a partition is paused when `maxBufferedPerPartition` of its records are
 * read and not yet acknowledged, every partition when `maxBuffered` are, and they resume at half those marks
 * (not just under them, so a partition does not flap). A halted partition stays paused until it is revoked.
 * The operator's pause stops every assigned partition, and every partition assigned while it lasts, until
 * the operator resumes; backpressure's resume leaves those paused at the source.
 */
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { TopicPartition } from '../../pipeline/record.js';
import type { Source } from '../types.js';
import type { CommitTracker } from './commit-tracker.js';
import { tpKey } from './offset-commits.js';

export interface BackpressureDeps {
  readonly source: Pick<Source, 'pause' | 'resume'>;
  readonly tracker: Pick<CommitTracker, 'inflight'>;
  readonly bounds: { readonly maxBuffered: number; readonly maxBufferedPerPartition: number };
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** The partitions the stream owns, by `tpKey`. */
  readonly assigned: ReadonlyMap<string, TopicPartition>;
  /** Whether a partition (by `tpKey`) is halted: it stays paused. */
  readonly halted: (key: string) => boolean;
}

export class Backpressure {
  readonly #deps: BackpressureDeps;
  /** Partitions paused by backpressure (or a halt), by `tpKey`. */
  readonly #paused = new Set<string>();
  #operator = false;

  constructor(deps: BackpressureDeps) {
    this.#deps = deps;
  }

  /** True between the operator's `pause()` and `resume()`. */
  get operatorPaused(): boolean {
    return this.#operator;
  }

  /** Whether a partition is paused by backpressure or a halt (not the operator's pause). */
  throttled(tp: TopicPartition): boolean {
    return this.#paused.has(tpKey(tp));
  }

  /** The operator's pause; false when it was in force already. */
  pause(): boolean {
    if (this.#operator) return false;
    this.#operator = true;
    const { assigned, source, logger } = this.#deps;
    source.pause([...assigned.values()]);
    logger.info({ partitions: assigned.size }, 'consumption paused by the operator');
    return true;
  }

  /** Ends the operator's pause (`running`: the source may fetch again); false when it was not in force. */
  resume(running: boolean): boolean {
    if (!this.#operator) return false;
    this.#operator = false;
    const { assigned, source, logger } = this.#deps;
    const free = [...assigned.entries()].filter(([k]) => !this.#paused.has(k)).map(([, tp]) => tp);
    if (running && free.length > 0) source.resume(free);
    logger.info({ partitions: free.length }, 'consumption resumed by the operator');
    return true;
  }

  /** Newly assigned partitions: paused under the operator's pause, else started unpaused (unless draining). */
  assigned(partitions: readonly TopicPartition[], draining: boolean): void {
    if (this.#operator) {
      this.#deps.source.pause(partitions);
      return;
    }
    // A transport may keep a pause across a rebalance, while the stream forgets its pauses on revoke: start
    // every newly assigned partition unpaused, or one paused before the rebalance would stay stuck.
    if (!draining) this.#deps.source.resume(partitions);
  }

  /** Revoked partitions: their pauses are forgotten. */
  revoked(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) this.#paused.delete(tpKey(tp));
    this.#report();
  }

  /** After a batch of `tp` was read: pauses it, or everything, past the high-water marks. */
  read(tp: TopicPartition): void {
    const { tracker, source, bounds, assigned } = this.#deps;
    const key = tpKey(tp);
    if (!this.#paused.has(key) && tracker.inflight(tp) >= bounds.maxBufferedPerPartition) {
      this.#paused.add(key);
      source.pause([tp]);
      this.#deps.metrics?.backpressurePauses.inc();
    }
    if (tracker.inflight() >= bounds.maxBuffered) {
      const toPause = [...assigned.entries()].filter(([k]) => !this.#paused.has(k));
      for (const [k] of toPause) this.#paused.add(k);
      source.pause(toPause.map(([, p]) => p));
      if (toPause.length > 0) this.#deps.metrics?.backpressurePauses.inc(toPause.length);
    }
    this.#report();
  }

  /** A halted partition: paused until revoked. */
  hold(tp: TopicPartition): void {
    this.#paused.add(tpKey(tp));
    this.#deps.source.pause([tp]);
    this.#report();
  }

  /** After records were acknowledged (while running): resumes what is back under the low-water marks. */
  relieve(): void {
    if (this.#paused.size === 0) return;
    const { tracker, bounds, assigned, halted, source } = this.#deps;
    if (tracker.inflight() > bounds.maxBuffered / 2) return;
    const resumed: TopicPartition[] = [];
    for (const key of this.#paused) {
      if (halted(key)) continue;
      const tp = assigned.get(key);
      if (tp === undefined) { this.#paused.delete(key); continue; }
      if (tracker.inflight(tp) <= bounds.maxBufferedPerPartition / 2) {
        this.#paused.delete(key);
        resumed.push(tp);
      }
    }
    // Under the operator's pause the partitions are no longer throttled, but they stay paused at the source.
    if (resumed.length > 0 && !this.#operator) source.resume(resumed);
    if (resumed.length > 0) this.#deps.metrics?.backpressureResumes.inc(resumed.length);
    this.#report();
  }

  #report(): void {
    this.#deps.metrics?.pausedPartitions.set(this.#paused.size);
  }
}
