/**
 * A consumer-group member of the embedded log, behind the same `Source` seam as Kafka.
 *
 * Delivery is pull-shaped and always asynchronous: an append only marks the consumer as having work and
 * schedules one delivery pass (on the clock's next turn), so producers never re-enter the
 * pipeline and whatever arrived meanwhile goes out as one batch per partition. A pass announces queued
 * assignment changes first, then hands out at most one batch per owned, unpaused partition, starting from
 * a rotating partition for fairness, and schedules another pass if any partition has more.
 */
import { Observable, type Subscriber } from 'rxjs';
import { z } from 'zod';
import { preciseScheduler, type Clock } from '../../core/clock.js';
import { TransportError } from '../../core/errors.js';
import { parseOptions } from '../../core/options.js';
import { componentLogger, type Logger } from '../../core/log.js';
import type { ChangelogStore, Source, SourceEvent } from '../types.js';
import type { TopicPartition } from '../../pipeline/record.js';
import type { ConsumerGroup, GroupMember } from './consumer-group.js';
import type { PartitionLog } from './partition-log.js';

export interface EmbeddedConsumerOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  /** Most records in one batch. Default 500, Kafka's max.poll.records default (`embeddedSourceSchema`). */
  readonly maxBatchSize?: number;
  /** Where a partition starts when its group has no committed offset (Kafka's auto.offset.reset). Default earliest. */
  readonly resetTo?: 'earliest' | 'latest';
  /**
   * Schedules delivery passes, each on the clock's next turn. Default: the production clock, whose next turn is
   * a setImmediate, which lets I/O interleave at full speed (a timer would add a millisecond). A
   * VirtualTimeScheduler makes delivery explicit in tests.
   */
  readonly scheduler?: Clock;
}

/** An embedded consumer's tuning, as code passes it: the one place its defaults live. */
export const embeddedSourceSchema = z.object({
  maxBatchSize: z.number().int().positive().default(500),
  resetTo: z.enum(['earliest', 'latest']).default('earliest'),
});

/** What a consumer needs from its log: kept narrow so the consumer never reaches into the log's state. */
export interface ConsumerHost {
  readonly logger: Logger;
  partitionLog(topic: string, partition: number): PartitionLog;
  group(groupId: string): ConsumerGroup;
  committedOffset(groupId: string, topic: string, partition: number): number | undefined;
  commit(groupId: string, offsets: ReadonlyArray<TopicPartition & { readonly offset: number }>): void;
  /** The log's changelog store (a topic of the same log). */
  readonly changelog: ChangelogStore;
}

/** One owned partition. */
interface Owned {
  readonly tp: TopicPartition;
  readonly key: string;
  readonly log: PartitionLog;
  /** The next offset to deliver; undefined until the assignment has been announced on events$. */
  position: number | undefined;
  readonly unwatch: () => void;
}

const keyOf = (tp: TopicPartition): string => `${tp.topic}:${tp.partition}`;

let nextMemberNumber = 0;

export class EmbeddedSource implements Source {
  readonly events$: Observable<SourceEvent>;
  readonly memberId: string;
  readonly groupId: string;
  /** Per-key state's changelog: a topic of this consumer's log. */
  readonly changelog: ChangelogStore;

  private readonly maxBatchSize: number;
  private readonly resetTo: 'earliest' | 'latest';
  private readonly scheduler: Clock | undefined;
  private readonly group: ConsumerGroup;
  private readonly member: GroupMember;
  private readonly logger: Logger;

  private readonly owned = new Map<string, Owned>();
  /** The owned partitions in a stable order, and where the next pass starts in it. */
  private order: Owned[] = [];
  private cursor = 0;
  /** Kept apart from ownership, as kafkajs does: a pause survives a rebalance and applies on reassignment. */
  private readonly paused = new Set<string>();
  /** Assignment changes not yet announced on events$. */
  private control: SourceEvent[] = [];
  private subscriber: Subscriber<SourceEvent> | undefined;
  private hadSubscriber = false;
  private scheduled = false;
  private status: 'open' | 'closing' | 'closed' = 'open';
  private readonly wake = (): void => this.schedule();
  private readonly pass = (): void => this.deliver();

  constructor(private readonly host: ConsumerHost, options: EmbeddedConsumerOptions) {
    if (options.topics.length === 0) throw new TransportError('an embedded consumer needs at least one topic', { retryable: false });
    this.groupId = options.groupId;
    this.changelog = host.changelog;
    this.memberId = `${options.groupId}-${++nextMemberNumber}`;
    const { maxBatchSize, resetTo } = parseOptions(embeddedSourceSchema, options, 'embedded consumer options');
    this.maxBatchSize = maxBatchSize;
    this.resetTo = resetTo;
    this.scheduler = options.scheduler;
    this.logger = componentLogger(host.logger, 'embedded_consumer', { group: options.groupId, member: this.memberId });
    this.member = {
      id: this.memberId,
      topics: [...options.topics],
      onRevoked: (partitions) => this.revoked(partitions),
      onAssigned: (partitions) => this.assigned(partitions),
    };
    this.events$ = new Observable<SourceEvent>((subscriber) => this.attach(subscriber));
    this.group = host.group(options.groupId);
    this.group.join(this.member);
  }

  /** The partitions this member owns right now, announced or not. */
  assignment(): TopicPartition[] {
    return this.order.map((o) => o.tp);
  }

  commit(offsets: ReadonlyArray<TopicPartition & { readonly offset: number }>): Promise<void> {
    if (this.status === 'closed') return Promise.reject(new TransportError(`commit after close (${this.memberId})`, { retryable: false }));
    try {
      // A commit from a member that lost the partition is accepted, unlike Kafka's generation fencing: a
      // commit only ever covers acknowledged records, so a late one can cause duplicates but never a loss.
      this.host.commit(this.groupId, offsets);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new TransportError(String(err)));
    }
  }

  pause(partitions: readonly TopicPartition[]): void {
    // Takes effect at once: every delivery pass checks this set before handing out a partition's batch.
    for (const tp of partitions) this.paused.add(keyOf(tp));
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) this.paused.delete(keyOf(tp));
    this.schedule();
  }

  /**
   * Leaves the group (the others rebalance), announces what is still queued and the loss of every owned
   * partition, then completes events$. Commits made while handling that `revoked` are still accepted.
   */
  close(): Promise<void> {
    if (this.status !== 'open') return Promise.resolve();
    this.status = 'closing';
    this.group.leave(this.member);
    const lost = this.order.map((o) => o.tp);
    for (const o of this.order) o.unwatch();
    this.owned.clear();
    this.order = [];
    const subscriber = this.subscriber;
    const queued = this.control;
    this.control = [];
    if (subscriber !== undefined) {
      for (const event of queued) subscriber.next(event);
      if (lost.length > 0) subscriber.next({ type: 'revoked', partitions: lost });
    }
    this.status = 'closed';
    this.subscriber = undefined;
    subscriber?.complete();
    return Promise.resolve();
  }

  // ---- group callbacks ---------------------------------------------------------------------------------

  private assigned(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const key = keyOf(tp);
      const log = this.host.partitionLog(tp.topic, tp.partition);
      this.owned.set(key, { tp, key, log, position: undefined, unwatch: log.watch(this.wake) });
    }
    this.order = [...this.owned.values()];
    this.control.push({ type: 'assigned', partitions });
    this.schedule();
  }

  private revoked(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const key = keyOf(tp);
      this.owned.get(key)?.unwatch();
      this.owned.delete(key);
    }
    this.order = [...this.owned.values()];
    this.control.push({ type: 'revoked', partitions });
    this.schedule();
  }

  // ---- delivery ----------------------------------------------------------------------------------------

  private attach(subscriber: Subscriber<SourceEvent>): (() => void) | undefined {
    if (this.status !== 'open') {
      subscriber.complete();
      return undefined;
    }
    if (this.subscriber !== undefined) {
      subscriber.error(new TransportError(`events$ of ${this.memberId} already has a subscriber`, { retryable: false }));
      return undefined;
    }
    // A later subscriber starts as a restarted consumer would: told its assignment, then reading from the
    // committed offsets, because it cannot know what the previous subscriber did with its batches.
    if (this.hadSubscriber) {
      for (const o of this.order) o.position = undefined;
      this.control = this.order.length > 0 ? [{ type: 'assigned', partitions: this.order.map((o) => o.tp) }] : [];
    }
    this.subscriber = subscriber;
    this.hadSubscriber = true;
    this.schedule();
    return () => {
      if (this.subscriber === subscriber) this.subscriber = undefined;
    };
  }

  private schedule(): void {
    if (this.scheduled || this.subscriber === undefined || this.status !== 'open') return;
    this.scheduled = true;
    (this.scheduler ?? preciseScheduler).schedule(this.pass);
  }

  /** True while `subscriber` may still receive: a handler can unsubscribe or close us mid-pass. */
  private live(subscriber: Subscriber<SourceEvent>): boolean {
    return this.subscriber === subscriber && this.status === 'open';
  }

  private deliver(): void {
    this.scheduled = false;
    const subscriber = this.subscriber;
    if (subscriber === undefined || this.status !== 'open') return;

    while (this.control.length > 0) {
      const event = this.control.shift();
      if (event === undefined) break;
      if (event.type === 'assigned') this.position(event.partitions);
      subscriber.next(event);
      if (!this.live(subscriber)) return;
    }

    // Handlers may rebalance, pause or resume during the pass, so iterate over a snapshot and re-check
    // ownership and pause state right before each partition's turn.
    const order = this.order;
    const count = order.length;
    let more = false;
    for (let i = 0; i < count; i++) {
      const owned = order[(this.cursor + i) % count];
      if (owned === undefined || owned.position === undefined) continue;
      if (this.owned.get(owned.key) !== owned || this.paused.has(owned.key)) continue;
      const records = owned.log.read(owned.position, this.maxBatchSize);
      const last = records[records.length - 1];
      if (last === undefined) continue;
      if (records[0] !== undefined && records[0].offset > owned.position) {
        this.logger.warn({ topic: owned.tp.topic, partition: owned.tp.partition, from: owned.position, to: records[0].offset }, 'retention dropped records before they were delivered');
      }
      owned.position = last.offset + 1;
      if (owned.position < owned.log.highWatermark) more = true;
      subscriber.next({ type: 'batch', batch: { topic: owned.tp.topic, partition: owned.tp.partition, records } });
      if (!this.live(subscriber)) return;
      if (this.control.length > 0) {
        // A rebalance happened inside a handler: announce it before handing out anything more.
        more = true;
        break;
      }
    }
    this.cursor = count === 0 ? 0 : (this.cursor + 1) % count;
    if (more) this.schedule();
  }

  /** Fixes where newly announced partitions start: the group's committed offset, or the reset policy. */
  private position(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const owned = this.owned.get(keyOf(tp));
      if (owned === undefined || owned.position !== undefined) continue;
      const { log } = owned;
      const committed = this.host.committedOffset(this.groupId, tp.topic, tp.partition);
      const inRange = committed !== undefined && committed >= log.logStartOffset && committed <= log.highWatermark;
      owned.position = inRange ? committed : this.resetTo === 'latest' ? log.highWatermark : log.logStartOffset;
    }
  }
}
