/**
 * A Kafka consumer-group member behind the `Source` seam.
 *
 * The consumer is started on the first subscription to `events$` and hands every fetched batch over at
 * once, without waiting for its processing: the pipeline processes asynchronously and commits itself,
 * through `commit`, only what it has delivered. Nothing is committed otherwise.
 *
 * Every join of the group restarts every partition at its committed offset, kept partitions included, so
 * the source announces a rebalance as `revoked` (the whole old assignment) followed by `assigned` (the
 * whole new one): the pipeline then forgets what it had in flight, exactly as the client does.
 *
 * A crashed consumer is replaced: the source revokes what it had, waits a backoff, and starts a new
 * consumer in the same group; `events$` stays open, so the pipeline sees only the revoke and the assign.
 * So is a stalled one, which kafkajs does not report: see stall-watchdog.ts.
 */
import { Observable, type Subscriber, type Subscription } from 'rxjs';
import { BROKER_FETCH_WAIT_MS, kafkaSourceSchema } from '../../config/kafka-options.js';
import { nextTurn, preciseScheduler, type Clock } from '../../core/clock.js';
import { TransportError, asVerdictError } from '../../core/errors.js';
import { parseOptions } from '../../core/options.js';
import { componentLogger, silentLogger, type Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { Source, SourceEvent } from '../types.js';
import type { TopicPartition } from '../../pipeline/record.js';
import type { AdminLike, ConsumerLike, ConsumerSettings, FetchedBatch, KafkaClientFactory, KafkaConnection } from './kafka-client.js';
import { kafkaClientFactory } from './client-factory.js';
import { KafkaChangelog } from './kafka-changelog.js';
import { CrashLoopDetector, type CrashLoop } from './crash-loop.js';
import { detectFetchWait, type FetchWait } from './fetch-wait.js';
import { StallWatchdog, type StalledPartition } from './stall-watchdog.js';

/**
 * Loose: every field below `topics` may be left out, and is then `kafkaSourceSchema`'s default
 * (config/kafka-options.ts, the one place they live); a bad value throws `CONFIG_INVALID`.
 */
export interface KafkaSourceOptions extends KafkaConnection {
  /** The consumer group: partitions are shared among its members, offsets committed under it. */
  readonly groupId: string;
  /** The topics to subscribe to (existing ones; the source does not create topics). */
  readonly topics: readonly string[];
  /** Where a partition without a committed offset starts. Default true: its first record. */
  readonly fromBeginning?: boolean;
  /** Group session timeout, ms. Default 30 s. */
  readonly sessionTimeout?: number;
  /** ms; below `sessionTimeout`. Default 3 s. */
  readonly heartbeatInterval?: number;
  /** ms. Default 60 s. */
  readonly rebalanceTimeout?: number;
  /** Bytes per partition in one fetch. Default 1 MiB. */
  readonly maxBytesPerPartition?: number;
  /**
   * How long a fetch may wait for records, ms. Default: chosen from the broker before the first consumer
   * starts (fetch-wait.ts): 5 against librdkafka's mock cluster, which never wakes a waiting fetch, else 500.
   */
  readonly maxWaitTimeInMs?: number | undefined;
  /** Default 4. */
  readonly partitionsConsumedConcurrently?: number;
  /** Default: silent. Logs as `component: kafka_source`. */
  readonly logger?: Logger;
  /** Backoff between re-creations of a crashed consumer (full jitter), ms. Default 500 doubling to 30 s. */
  readonly restartBackoff?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * How long a partition not paused by the stream may go without a batch while it has records to read
   * before its consumer counts as stalled and is recreated as after a crash. 0 disables this. Default 15 s.
   */
  readonly stallTimeoutMs?: number;
  /**
   * Consecutive consumer crashes at one position (the same batch, or the same fetch positions), with no
   * batch delivered between them, after which the source reports a crash loop: `crashLoop()`, an error log
   * with the offset and `verdict_kafka_consumer_crash_loop`. It keeps recreating the consumer. Default 3.
   */
  readonly crashLoopThreshold?: number;
}


export interface KafkaSourceDeps {
  /** The client library. Default: kafkajs, connected with the options' connection fields. */
  readonly factory?: KafkaClientFactory;
  /** Times restart backoffs and stall checks. Default: the production clock. */
  readonly scheduler?: Clock;
  /** Jitter source. Default Math.random. */
  readonly random?: () => number;
  /** Counts consumer re-creations by reason. */
  readonly metrics?: Pick<Metrics, 'consumerRestarts' | 'consumerCrashLoop'>;
}

/** One partition's consumer lag, as `KafkaSource.lag()` reports it (offsets). */
export interface KafkaPartitionLag extends TopicPartition {
  /** The group's committed offset, if it has one. */
  readonly committed: number | undefined;
  /** The partition's log end offset: the offset the next record written will get. */
  readonly highWatermark: number;
  /** Records the group has yet to commit past. */
  readonly lag: number;
}

type Status = 'idle' | 'running' | 'closing' | 'closed';

interface Owned {
  readonly tp: TopicPartition;
  /** The offset the next batch must start at or after; undefined until the first batch. */
  next: number | undefined;
}

const keyOf = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

/**
 * A `Source` on a Kafka consumer group (kafkajs by default). Construction checks the options
 * (`CONFIG_INVALID`) and connects nothing; subscribing to `events$` starts the consumer. `commit` rejects
 * with `TransportError` (TRANSPORT_FAILED): not retryable after `close()`, retryable while a crashed consumer
 * is being replaced. The `lag()` it samples and the crash loop it reports are what the daemon exports as
 * `verdict_consumer_lag` and `verdict_kafka_consumer_crash_loop`.
 */
export class KafkaSource implements Source {
  readonly events$: Observable<SourceEvent>;
  /** The consumer group (`groupId`). */
  readonly groupId: string;
  /** Per-key state's changelog on the same cluster (a compacted topic; streams/kafka/kafka-changelog.ts). */
  readonly changelog: KafkaChangelog;

  /** The consumers' settings but the fetch wait, which may have to be asked of the broker first. */
  readonly #settings: Omit<ConsumerSettings, 'maxWaitTimeInMs'>;
  readonly #factory: KafkaClientFactory;
  readonly #scheduler: Clock;
  readonly #random: () => number;
  readonly #backoff: { readonly initialDelayMs: number; readonly maxDelayMs: number };
  readonly #logger: Logger;
  readonly #metrics: Pick<Metrics, 'consumerRestarts' | 'consumerCrashLoop'> | undefined;
  readonly #crashLoops: CrashLoopDetector;
  readonly #watchdog: StallWatchdog;

  #status: Status = 'idle';
  #subscriber: Subscriber<SourceEvent> | undefined;
  /** The consumer in charge; undefined while waiting to replace a crashed one. */
  #consumer: ConsumerLike | undefined;
  /** Stops of retired consumers; a new consumer starts only after them, so the group sees one member leave. */
  #stopping: Promise<void> = Promise.resolve();
  #restartTimer: Subscription | undefined;
  /** Crashes since a batch was last delivered: the backoff exponent. */
  #failures = 0;
  /** The announced assignment. */
  readonly #owned = new Map<string, Owned>();
  /** Paused partitions of the announced assignment; a revoke clears them, as the pipeline forgets its own. */
  readonly #paused = new Set<string>();
  readonly #commits = new Set<Promise<void>>();
  #admin: AdminLike | undefined;
  #closed: Promise<void> | undefined;
  /** The consumers' fetch wait: configured, or chosen from the broker before the first consumer starts. */
  #fetchWait: FetchWait | undefined;
  /** The broker being asked for its cluster id. */
  #detecting: Promise<void> | undefined;

  constructor(options: KafkaSourceOptions, deps: KafkaSourceDeps = {}) {
    if (options.topics.length === 0) throw new TransportError('a Kafka source needs at least one topic', { retryable: false });
    const { restartBackoff, stallTimeoutMs, crashLoopThreshold, maxWaitTimeInMs, ...consuming } = parseOptions(kafkaSourceSchema, options, 'Kafka source options');
    this.#settings = { groupId: options.groupId, topics: [...options.topics], ...consuming };
    if (maxWaitTimeInMs !== undefined) this.#fetchWait = { ms: maxWaitTimeInMs, source: 'configured' };
    const logger = options.logger ?? silentLogger;
    this.#logger = componentLogger(logger, 'kafka_source', { groupId: options.groupId, topics: this.#settings.topics });
    this.#factory = deps.factory ?? kafkaClientFactory(options, logger);
    this.groupId = options.groupId;
    this.changelog = new KafkaChangelog(this.#factory);
    this.#scheduler = deps.scheduler ?? preciseScheduler;
    this.#random = deps.random ?? Math.random;
    this.#backoff = restartBackoff;
    this.#metrics = deps.metrics;
    this.#crashLoops = new CrashLoopDetector(crashLoopThreshold, this.#logger, deps.metrics);
    this.#watchdog = new StallWatchdog({
      timeoutMs: stallTimeoutMs, scheduler: this.#scheduler, logger: this.#logger,
      positions: () => this.lag(), stalled: (partitions) => this.#onStalled(partitions),
    });
    this.events$ = new Observable<SourceEvent>((subscriber) => this.#attach(subscriber));
  }

  /** The announced assignment. */
  assignment(): TopicPartition[] {
    return [...this.#owned.values()].map((o) => o.tp);
  }

  commit(offsets: ReadonlyArray<TopicPartition & { readonly offset: number }>): Promise<void> {
    if (this.#status === 'closed') return Promise.reject(new TransportError('offset commit after close', { retryable: false }));
    const consumer = this.#consumer;
    if (consumer === undefined) return Promise.reject(new TransportError('offset commit while no consumer runs (restarting or unsubscribed)', { retryable: true }));
    if (offsets.length === 0) return Promise.resolve();
    const commit = consumer.commit(offsets);
    this.#commits.add(commit);
    const forget = (): void => { this.#commits.delete(commit); };
    commit.then(forget, forget);
    return commit;
  }

  pause(partitions: readonly TopicPartition[]): void {
    // Only owned partitions: a pause kept for a partition not owned would outlive the pipeline's own.
    const owned = partitions.filter((tp) => this.#owned.has(keyOf(tp)));
    for (const tp of owned) this.#paused.add(keyOf(tp));
    this.#watchdog.pause(owned);
    this.#consumer?.pause(owned);
  }

  /** Fetches from these partitions again (and lets the stall watchdog watch them again). */
  resume(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) this.#paused.delete(keyOf(tp));
    this.#watchdog.resume(partitions);
    this.#consumer?.resume(partitions);
  }

  /**
   * Announces the loss of every owned partition (the pipeline commits what it owes while the consumer is
   * still a member), waits for those commits, leaves the group and completes `events$`.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  /**
   * The consumers' fetch wait (ms) and where it came from: the options, or the broker (asked before the first
   * consumer starts); undefined until then. `unknown`: the broker could not be asked, so Kafka's default.
   */
  fetchWait(): FetchWait | undefined {
    return this.#fetchWait;
  }

  /** Set while consumers keep crashing at one position without delivering anything (see `crashLoopThreshold`). */
  crashLoop(): CrashLoop | undefined {
    return this.#crashLoops.loop;
  }

  /** Per partition of the subscribed topics: how far the group's committed offset is behind the log end. */
  async lag(): Promise<KafkaPartitionLag[]> {
    // A sample started during close would connect the admin client again and keep the process alive.
    if (this.#status === 'closing' || this.#status === 'closed') throw new TransportError('the source is closed', { retryable: false });
    const admin = this.#adminClient();
    const { groupId, topics, fromBeginning } = this.#settings;
    const committed = new Map((await admin.committedOffsets(groupId, topics)).map((o) => [keyOf(o), o.offset]));
    const result: KafkaPartitionLag[] = [];
    for (const topic of topics) {
      for (const p of await admin.topicOffsets(topic)) {
        const offset = committed.get(keyOf({ topic, partition: p.partition }));
        // Without a commit the group would start where the reset policy says.
        const from = Math.max(p.low, offset ?? (fromBeginning ? p.low : p.high));
        result.push({ topic, partition: p.partition, committed: offset, highWatermark: p.high, lag: Math.max(0, p.high - from) });
      }
    }
    return result;
  }

  // ---- lifecycle ---------------------------------------------------------------------------------------

  #attach(subscriber: Subscriber<SourceEvent>): (() => void) | undefined {
    if (this.#status === 'closing' || this.#status === 'closed') {
      subscriber.complete();
      return undefined;
    }
    if (this.#subscriber !== undefined) {
      subscriber.error(new TransportError('events$ of a Kafka source already has a subscriber', { retryable: false }));
      return undefined;
    }
    this.#subscriber = subscriber;
    this.#status = 'running';
    // After a resubscription the previous consumer may still be leaving the group: let it go first.
    void this.#beforeLaunch().then(() => {
      if (this.#subscriber === subscriber && this.#status === 'running' && this.#consumer === undefined) this.#launch();
    });
    return () => {
      if (this.#subscriber !== subscriber) return;
      // Unsubscribed without close: nobody processes batches any more, so stop fetching. A later
      // subscriber starts a new consumer, which reads from the committed offsets.
      this.#subscriber = undefined;
      if (this.#status !== 'running') return;
      this.#status = 'idle';
      this.#restartTimer?.unsubscribe();
      this.#watchdog.stop();
      this.#owned.clear();
      this.#paused.clear();
      if (this.#consumer !== undefined) this.#retire(this.#consumer);
    };
  }

  /** Resolves when a consumer may start: the one before it has left the group, and the fetch wait is known. */
  #beforeLaunch(): Promise<unknown> {
    const known = this.#fetchWait !== undefined && this.#fetchWait.source !== 'unknown';
    return known ? this.#stopping : Promise.all([this.#stopping, this.#detectFetchWait()]);
  }

  /** Asks the broker what it is, once (again after a failed ask), and chooses the fetch wait from it. */
  #detectFetchWait(): Promise<void> {
    this.#detecting ??= detectFetchWait(this.#adminClient()).then(({ wait, error }) => {
      this.#detecting = undefined;
      this.#fetchWait = wait;
      const fields = { maxWaitTimeInMs: wait.ms, clusterId: wait.clusterId, chosenFor: wait.source };
      if (error !== undefined) {
        this.#logger.warn({ ...fields, err: asVerdictError(error).toJSON() }, 'cannot ask the broker for its cluster id: fetches wait Kafka\'s default (asked again before the next consumer starts)');
      } else if (wait.source === 'mock-broker') {
        this.#logger.info(fields, 'librdkafka\'s mock cluster, which answers a fetch only when its wait ends: fetches wait the short mock wait (kafka.maxWaitTimeInMs sets another)');
      } else {
        this.#logger.info(fields, 'fetch wait: Kafka\'s default (a broker answers as soon as records arrive; kafka.maxWaitTimeInMs sets another)');
      }
    });
    return this.#detecting;
  }

  #adminClient(): AdminLike {
    this.#admin ??= this.#factory.admin();
    return this.#admin;
  }

  #launch(): void {
    // #beforeLaunch has set the wait; Kafka's default stands in only to keep the types honest.
    const consumer = this.#factory.consumer({ ...this.#settings, maxWaitTimeInMs: this.#fetchWait?.ms ?? BROKER_FETCH_WAIT_MS });
    this.#consumer = consumer;
    consumer.start({
      batch: (batch) => this.#onBatch(consumer, batch),
      joined: (assignment) => this.#onJoined(consumer, assignment),
      rebalancing: () => this.#onRebalancing(consumer),
      crashed: (error) => this.#onCrashed(consumer, error),
    }).then(
      () => this.#logger.info('consumer started'),
      (err: unknown) => this.#onCrashed(consumer, err instanceof TransportError ? err : new TransportError(String(err), { cause: err })),
    );
  }

  #retire(consumer: ConsumerLike): void {
    if (this.#consumer === consumer) this.#consumer = undefined;
    const stopped = consumer.stop().catch((err: unknown) => this.#logger.warn({ err }, 'consumer stop failed'));
    this.#stopping = Promise.all([this.#stopping, stopped]).then(() => undefined);
  }

  async #close(): Promise<void> {
    this.#status = 'closing';
    this.#restartTimer?.unsubscribe();
    this.#revokeAll('close');
    // The pipeline commits what it owes on `revoked` a few microtasks later: one turn of the event loop
    // lets those commits start (a yield, not a delay), then they are awaited before the consumer goes. The
    // turn is the real event loop's even under a virtual clock: it waits for promise chains, which virtual
    // time does not run, and on a virtual clock close() would hang until a test happened to advance time.
    await nextTurn(preciseScheduler);
    await Promise.allSettled([...this.#commits]);
    if (this.#consumer !== undefined) this.#retire(this.#consumer);
    await this.#stopping;
    await this.#watchdog.settled();
    // A cluster-id request still out would connect the admin client again after its disconnect.
    await this.#detecting;
    await this.#admin?.disconnect().catch((err: unknown) => this.#logger.warn({ err }, 'admin disconnect failed'));
    await this.changelog.close().catch((err: unknown) => this.#logger.warn({ err }, 'changelog admin disconnect failed'));
    this.#status = 'closed';
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    subscriber?.complete();
    this.#logger.info('closed');
  }

  // ---- consumer callbacks (each checks it comes from the consumer in charge) ----------------------------

  #onBatch(consumer: ConsumerLike, batch: FetchedBatch): boolean {
    const subscriber = this.#subscriber;
    if (consumer !== this.#consumer || subscriber === undefined || this.#status !== 'running') return false;
    const key = keyOf(batch);
    const owned = this.#owned.get(key);
    // Refused batches are fetched again: a paused partition's after resume, an unowned one by its owner.
    if (owned === undefined || this.#paused.has(key)) return false;
    let delivered = batch;
    const next = owned.next;
    if (next !== undefined && (batch.records[0]?.offset ?? next) < next) {
      // The pipeline requires increasing offsets per partition; a client re-delivering records already
      // handed over must not break that. Dropping them loses nothing: they are in flight already.
      delivered = { topic: batch.topic, partition: batch.partition, records: batch.records.filter((r) => r.offset >= next) };
      this.#logger.warn({ topic: batch.topic, partition: batch.partition, from: batch.records[0]?.offset, next }, 'dropped records delivered twice');
    }
    const last = delivered.records.at(-1);
    if (last === undefined) return true;
    owned.next = last.offset + 1;
    this.#watchdog.delivered(batch, owned.next, batch.highWatermark);
    this.#failures = 0;
    this.#crashLoops.progressed();
    subscriber.next({ type: 'batch', batch: delivered });
    return true;
  }

  #onJoined(consumer: ConsumerLike, assignment: readonly TopicPartition[]): void {
    if (consumer !== this.#consumer || this.#status !== 'running') return;
    this.#revokeAll('rejoin');
    for (const tp of assignment) this.#owned.set(keyOf(tp), { tp: { topic: tp.topic, partition: tp.partition }, next: undefined });
    this.#logger.info({ assignment: format(assignment) }, 'partitions assigned');
    this.#watchdog.watch(this.assignment());
    if (assignment.length > 0) this.#subscriber?.next({ type: 'assigned', partitions: this.assignment() });
  }

  #onRebalancing(consumer: ConsumerLike): void {
    if (consumer !== this.#consumer) return;
    this.#revokeAll('rebalance');
  }

  #onCrashed(consumer: ConsumerLike, error: TransportError): void {
    if (consumer !== this.#consumer) return;
    this.#crashLoops.crashed(error, () => [...this.#owned.values()].map((o) => `${keyOf(o.tp)}@${o.next ?? '?'}`).join(','));
    const restart = this.#replace(consumer, 'crash');
    if (restart !== undefined) this.#logger.error({ err: error.toJSON(), ...restart }, 'consumer crashed; recreating it');
  }

  /** From the watchdog, which forgets a check once the assignment changes: the consumer is the one it watched. */
  #onStalled(stalled: readonly StalledPartition[]): void {
    const consumer = this.#consumer;
    if (consumer === undefined || this.#status !== 'running') return;
    const restart = this.#replace(consumer, 'stall');
    if (restart !== undefined) this.#logger.warn({ stalled, ...restart }, 'consumer stalled; recreating it');
  }

  /** Revokes, retires the consumer and, while running, starts a new one after a backoff, which it returns. */
  #replace(consumer: ConsumerLike, reason: 'crash' | 'stall'): { failures: number; delayMs: number } | undefined {
    this.#revokeAll(reason);
    this.#retire(consumer);
    if (this.#status !== 'running') return undefined;
    this.#failures++;
    // Full jitter, as core/retry.ts. retry() itself does not fit: a restart "succeeds" when the new consumer
    // starts, but its failure arrives later as another crash, so the attempt count must outlive attempts.
    const ceiling = Math.min(this.#backoff.maxDelayMs, this.#backoff.initialDelayMs * 2 ** (this.#failures - 1));
    const delayMs = Math.round(this.#random() * ceiling);
    this.#metrics?.consumerRestarts.inc({ reason });
    this.#restartTimer = this.#scheduler.schedule(() => {
      this.#restartTimer = undefined;
      void this.#beforeLaunch().then(() => {
        if (this.#status === 'running' && this.#consumer === undefined) this.#launch();
      });
    }, delayMs);
    return { failures: this.#failures, delayMs };
  }

  /** Announces the loss of the whole assignment and forgets its pauses, in the client too. */
  #revokeAll(reason: string): void {
    this.#watchdog.stop();
    if (this.#owned.size === 0) return;
    const lost = this.assignment();
    const unpause = lost.filter((tp) => this.#paused.has(keyOf(tp)));
    this.#owned.clear();
    this.#paused.clear();
    // A kafkajs pause outlives a rebalance; the pipeline's does not, so it must not survive here either.
    this.#consumer?.resume(unpause);
    this.#logger.info({ reason, assignment: format(lost) }, 'partitions revoked');
    this.#subscriber?.next({ type: 'revoked', partitions: lost });
  }
}

/** `topic: [0, 1, 2]` per topic, for logs. */
function format(partitions: readonly TopicPartition[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const { topic, partition } of partitions) (out[topic] ??= []).push(partition);
  return out;
}
