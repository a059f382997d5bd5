/**
 * The stall watchdog of a Kafka source: a guard against a consumer that stays joined and "running" but no
 * longer fetches, with no crash and no error (suspected of kafkajs after a broker outage; not observed yet:
 * the daemon-broker-outage stall was a commit regression, see PartitionedStream.commitNow). Only the outside
 * would show it: a partition that the stream has not paused and that has records to read delivers no batch.
 *
 * Every `timeoutMs / 2` the watchdog looks at the partitions idle that long (no batch since their
 * assignment, their resume or their last batch). Records to read are known two ways:
 * - the last batch's fetch reported a high watermark past the partition's position: records were waiting
 *   then, so `timeoutMs` without a batch since is a stall;
 * - otherwise the log is asked (an admin round-trip, one at a time): a partition found with records past
 *   its position at two checks in a row has been idle for `timeoutMs`, records waiting for half of it. One
 *   sighting is not enough: a record produced just before the check would look like a stall. A check that
 *   fails (brokers down, as in an outage) reports nothing: no restart without evidence.
 */
import type { Subscription } from 'rxjs';
import type { Clock } from '../../core/clock.js';
import { asVerdictError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { TopicPartition } from '../../pipeline/record.js';

/** Per partition: the log end, and how far the group's committed offset is behind it. */
export interface LogPosition extends TopicPartition {
  readonly highWatermark: number;
  readonly lag: number;
}

export interface StalledPartition extends TopicPartition {
  /** The next offset the partition should deliver. */
  readonly position: number;
  readonly highWatermark: number;
  readonly idleMs: number;
}

export interface StallWatchdogOptions {
  /** 0 disables the watchdog. */
  readonly timeoutMs: number;
  readonly scheduler: Clock;
  readonly logger: Logger;
  /** Reads the log ends and committed lags of the watched topics. */
  readonly positions: () => Promise<readonly LogPosition[]>;
  /** Called with the stalled partitions; the owner replaces its consumer. */
  readonly stalled: (partitions: readonly StalledPartition[]) => void;
}

interface Watched {
  readonly tp: TopicPartition;
  /** The offset after the last delivered record; undefined before the first batch. */
  next: number | undefined;
  /** The high watermark the last batch's fetch reported, if the client reports it. */
  fetchedEnd: number | undefined;
  /** Where its idle time starts: assignment, resume or the last batch. */
  since: number;
  /** Checks in a row that found records past its position. */
  behind: number;
  paused: boolean;
}

/** A partition with records past its position. */
interface Behind {
  readonly watched: Watched;
  readonly position: number;
  readonly highWatermark: number;
}

const keyOf = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class StallWatchdog {
  readonly #options: StallWatchdogOptions;
  /** The watched assignment. A new assignment makes new entries, so a check started before it is ignored. */
  readonly #watched = new Map<string, Watched>();
  /** The next tick; pending exactly while an assignment is watched. */
  #timer: Subscription | undefined;
  #check: Promise<void> | undefined;
  /**
   * Per partition, the position a stall was reported at. Stuck there again after the restart, the cause is
   * not a stalled client (kafkajs skips a tail of transaction markers without a batch, so the position never
   * reaches the high watermark): another restart would only churn the group, so it is not reported again.
   */
  readonly #reported = new Map<string, { readonly position: number; repeated: boolean }>();

  constructor(options: StallWatchdogOptions) {
    if (!(options.timeoutMs >= 0)) throw new RangeError(`stall timeout must be 0 or more, not ${options.timeoutMs}`);
    this.#options = options;
  }

  /** Watches a new assignment, unpaused, idle from now. */
  watch(partitions: readonly TopicPartition[]): void {
    this.stop();
    const since = this.#options.scheduler.now();
    for (const tp of partitions) {
      this.#watched.set(keyOf(tp), { tp: { topic: tp.topic, partition: tp.partition }, next: undefined, fetchedEnd: undefined, since, behind: 0, paused: false });
    }
    this.#arm();
  }

  /** The assignment is gone. */
  stop(): void {
    this.#watched.clear();
    this.#timer?.unsubscribe();
    this.#timer = undefined;
  }

  delivered(tp: TopicPartition, next: number, highWatermark: number | undefined): void {
    const key = keyOf(tp);
    const watched = this.#watched.get(key);
    if (watched === undefined) return;
    Object.assign(watched, { next, fetchedEnd: highWatermark, since: this.#options.scheduler.now(), behind: 0 });
    const reported = this.#reported.get(key);
    if (reported !== undefined && next > reported.position) this.#reported.delete(key);
  }

  pause(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const watched = this.#watched.get(keyOf(tp));
      if (watched !== undefined) watched.paused = true;
    }
  }

  /** Idle while paused is not a stall: a resumed partition's idle time starts again. */
  resume(partitions: readonly TopicPartition[]): void {
    const now = this.#options.scheduler.now();
    for (const tp of partitions) {
      const watched = this.#watched.get(keyOf(tp));
      if (watched?.paused === true) Object.assign(watched, { paused: false, since: now, behind: 0 });
    }
  }

  /** Settles when no check is in flight: the owner must not disconnect the admin client under one. */
  async settled(): Promise<void> {
    await this.#check;
  }

  #arm(): void {
    if (this.#options.timeoutMs === 0 || this.#timer !== undefined || this.#watched.size === 0) return;
    this.#timer = this.#options.scheduler.schedule(() => this.#tick(), this.#options.timeoutMs / 2);
  }

  #tick(): void {
    this.#timer = undefined;
    this.#arm();
    const { timeoutMs } = this.#options;
    const now = this.#options.scheduler.now();
    const idle = [...this.#watched.values()].filter((w) => !w.paused && now - w.since >= timeoutMs / 2);
    if (idle.length === 0) return;
    // No admin needed here, so a stall is caught even when the admin client is as stuck as the consumer.
    const fetchedBehind = idle.flatMap((w) => (w.next !== undefined && w.fetchedEnd !== undefined && w.next < w.fetchedEnd && now - w.since >= timeoutMs
      ? [{ watched: w, position: w.next, highWatermark: w.fetchedEnd }] : []));
    if (this.#report(fetchedBehind, now) || this.#check !== undefined) return;
    this.#check = this.#compare(idle)
      .catch((err: unknown) => this.#options.logger.warn({ err: asVerdictError(err).toJSON() }, 'stall check failed; no restart without evidence'))
      .finally(() => { this.#check = undefined; });
  }

  async #compare(idle: readonly Watched[]): Promise<void> {
    const sinces = idle.map((w) => w.since);
    const positions = new Map((await this.#options.positions()).map((p) => [keyOf(p), p]));
    const behind: Behind[] = [];
    for (const [i, watched] of idle.entries()) {
      const key = keyOf(watched.tp);
      const log = positions.get(key);
      // Revoked, paused or fed while the check ran: not idle any more.
      if (this.#watched.get(key) !== watched || watched.paused || watched.since !== sinces[i] || log === undefined) continue;
      // Before its first batch a partition is read from the committed offset (or the reset policy).
      const position = watched.next ?? log.highWatermark - log.lag;
      if (position >= log.highWatermark) {
        watched.behind = 0;
        continue;
      }
      if (++watched.behind >= 2) behind.push({ watched, position, highWatermark: log.highWatermark });
    }
    this.#report(behind, this.#options.scheduler.now());
  }

  /** Reports the partitions behind, but none again at the offset of an earlier report. True if it reported. */
  #report(behind: readonly Behind[], now: number): boolean {
    const stalled: StalledPartition[] = [];
    for (const { watched, position, highWatermark } of behind) {
      const key = keyOf(watched.tp);
      const reported = this.#reported.get(key);
      if (reported?.position === position) {
        if (!reported.repeated) {
          reported.repeated = true;
          this.#options.logger.warn({ ...watched.tp, position, highWatermark },
            'partition still gets no batch at the offset of a stall restart; not restarting for it again');
        }
        continue;
      }
      stalled.push({ ...watched.tp, position, highWatermark, idleMs: now - watched.since });
    }
    if (stalled.length === 0) return false;
    for (const s of stalled) this.#reported.set(keyOf(s), { position: s.position, repeated: false });
    this.#options.stalled(stalled);
    return true;
  }
}
