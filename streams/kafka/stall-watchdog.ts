/**
 * The stall watchdog of a Kafka source. After a broker outage kafkajs can keep a consumer that is joined and
 * "running" but never fetches again, and says nothing: no crash, no error. Only the outside shows it: a
 * partition that the stream has not paused and that has records to read delivers no batch.
 *
 * Every `timeoutMs / 2`, the partitions idle that long (no batch since their assignment, their resume or
 * their last batch) are compared with the log: a partition found with records past its position at two
 * checks in a row has been idle for `timeoutMs`, records waiting for half of it, and is reported stalled.
 * One sighting is not enough: a record produced just before the check would look like a stall.
 *
 * The comparison needs an admin round-trip, so it runs only for idle partitions and one at a time; when it
 * fails (the brokers are down, as in an outage) nothing is reported: no restart without evidence.
 */
import type { SchedulerLike, Subscription } from 'rxjs';
import { asVerdictError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { TopicPartition } from '../types.js';

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
  readonly scheduler: SchedulerLike;
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
  /** Where its idle time starts: assignment, resume or the last batch. */
  since: number;
  /** Checks in a row that found records past its position. */
  behind: number;
  paused: boolean;
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
      this.#watched.set(keyOf(tp), { tp: { topic: tp.topic, partition: tp.partition }, next: undefined, since, behind: 0, paused: false });
    }
    this.#arm();
  }

  /** The assignment is gone. */
  stop(): void {
    this.#watched.clear();
    this.#timer?.unsubscribe();
    this.#timer = undefined;
  }

  delivered(tp: TopicPartition, next: number): void {
    const key = keyOf(tp);
    const watched = this.#watched.get(key);
    if (watched === undefined) return;
    Object.assign(watched, { next, since: this.#options.scheduler.now(), behind: 0 });
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
    if (this.#check !== undefined) return;
    const now = this.#options.scheduler.now();
    const idle = [...this.#watched.values()].filter((w) => !w.paused && now - w.since >= this.#options.timeoutMs / 2);
    if (idle.length === 0) return;
    this.#check = this.#compare(idle)
      .catch((err: unknown) => this.#options.logger.warn({ err: asVerdictError(err).toJSON() }, 'stall check failed; no restart without evidence'))
      .finally(() => { this.#check = undefined; });
  }

  async #compare(idle: readonly Watched[]): Promise<void> {
    const sinces = idle.map((w) => w.since);
    const positions = new Map((await this.#options.positions()).map((p) => [keyOf(p), p]));
    const now = this.#options.scheduler.now();
    const stalled: StalledPartition[] = [];
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
      if (++watched.behind < 2) continue;
      const reported = this.#reported.get(key);
      if (reported?.position === position) {
        if (!reported.repeated) {
          reported.repeated = true;
          this.#options.logger.warn({ ...watched.tp, position, highWatermark: log.highWatermark },
            'partition still gets no batch at the offset of a stall restart; not restarting for it again');
        }
        continue;
      }
      stalled.push({ ...watched.tp, position, highWatermark: log.highWatermark, idleMs: now - watched.since });
    }
    if (stalled.length === 0) return;
    for (const s of stalled) this.#reported.set(keyOf(s), { position: s.position, repeated: false });
    this.#options.stalled(stalled);
  }
}
