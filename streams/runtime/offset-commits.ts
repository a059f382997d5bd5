/**
 * The stream's offset commits: on a timer and on demand, serialised so a commit never overtakes another,
 * and never moving a partition back.
 *
 * Offsets of a failed commit wait and are merged into the next one (the later offset wins), unless their
 * partition was revoked meanwhile (its new owner commits it). A commit owed by a revoked generation can
 * also arrive after the next generation has committed further (a commit slowed by a broker outage): sent
 * then, it would move the group back, and with nothing left to commit nothing would move it forward again,
 * so per partition the highest offset committed is kept and anything not above it is dropped.
 */
import type { SchedulerAction, Subscription } from 'rxjs';
import type { Clock } from '../../core/clock.js';
import { asVerdictError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { TopicPartition } from '../../pipeline/record.js';
import type { Source } from '../types.js';
import type { CommitOffset, CommitTracker } from './commit-tracker.js';

export interface OffsetCommitsDeps {
  readonly source: Pick<Source, 'commit'>;
  readonly tracker: Pick<CommitTracker, 'committable'>;
  readonly scheduler: Clock;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Whether the stream still owns a partition (`tpKey` form): a failed commit is kept only for those. */
  readonly owns: (key: string) => boolean;
  /** Told the offsets of every commit the source accepted (the crash journal clears suspect ranges they passed). */
  readonly committed?: (offsets: readonly CommitOffset[]) => void;
}

export const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class OffsetCommits {
  readonly #deps: OffsetCommitsDeps;
  #timer: Subscription | undefined;
  #committing: Promise<void> = Promise.resolve();
  readonly #uncommitted = new Map<string, CommitOffset>();
  /** Per partition, the highest offset committed. */
  readonly #committed = new Map<string, number>();

  constructor(deps: OffsetCommitsDeps) {
    this.#deps = deps;
  }

  /** Commits every `intervalMs` on the stream's clock until `stop()`. */
  start(intervalMs: number): void {
    const commit = (): Promise<void> => this.commitNow();
    this.#timer = this.#deps.scheduler.schedule(function tick(this: SchedulerAction<undefined>) {
      void commit();
      this.schedule(undefined, intervalMs);
    }, intervalMs);
  }

  stop(): void {
    this.#timer?.unsubscribe();
  }

  /** Commits whatever is committable now, and `extra` (offsets owed for revoked partitions). Never rejects. */
  commitNow(extra: readonly CommitOffset[] = []): Promise<void> {
    this.#committing = this.#committing.then(async () => {
      for (const o of [...extra, ...this.#deps.tracker.committable()]) {
        const prev = this.#uncommitted.get(tpKey(o));
        if (prev === undefined || prev.offset < o.offset) this.#uncommitted.set(tpKey(o), o);
      }
      const offsets = [...this.#uncommitted.values()].filter((o) => o.offset > (this.#committed.get(tpKey(o)) ?? -1));
      this.#uncommitted.clear();
      if (offsets.length === 0) return;
      try {
        await this.#deps.source.commit(offsets);
        for (const o of offsets) this.#committed.set(tpKey(o), Math.max(o.offset, this.#committed.get(tpKey(o)) ?? -1));
        this.#deps.metrics?.commits.inc();
        this.#deps.committed?.(offsets);
      } catch (err) {
        // A partition that has been revoked meanwhile is its new owner's to commit.
        for (const o of offsets) {
          if (this.#deps.owns(tpKey(o)) && !this.#uncommitted.has(tpKey(o))) this.#uncommitted.set(tpKey(o), o);
        }
        this.#deps.logger.warn({ err: asVerdictError(err).toJSON() }, 'offset commit failed; will retry');
      }
    });
    return this.#committing;
  }
}
