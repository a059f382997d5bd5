/**
 * Re-injecting dead letters: reads a dead-letter topic from its start up to the high watermarks it had when
 * the replay began (so a replay terminates even while the daemon keeps dead-lettering), keeps the records
 * whose `verdict-error-code` is asked for, and produces each one's original key, value and headers to the
 * input topic, with a `verdict-replayed-from: <topic>/<partition>/<offset>` header saying where it was.
 *
 * Commit-free: the reader is a member of a group of its own, named once per replay, that never commits. A
 * replay then neither needs nor disturbs any group's offsets, can be dry-run and re-run at will, and a
 * crash halfway leaves nothing to clean up; the watermark bound, not a committed position, ends it. The
 * price is that a re-run replays again whatever an earlier run already replayed.
 *
 * What is produced is the input record byte for byte: key and value as bytes or null (a tombstone stays a
 * tombstone), and the input's own headers in order, null values and duplicates included. A dead letter says
 * how many of its first headers are the input's (`verdict-original-headers`); dead letters written before
 * that header existed fall back to dropping every `verdict-*` header.
 */
import { randomBytes } from 'node:crypto';
import type { Subscription } from 'rxjs';
import { preciseScheduler, type Clock } from '../core/clock.js';
import { dlqReplaySchema, type KafkaConsumerTimings, type KafkaProducerOptions } from '../config/kafka-options.js';
import { ConfigError, TransportError } from '../core/errors.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import { parseOptions } from '../core/options.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import { headerText } from '../pipeline/headers.js';
import type { ConsumerLike, FetchedBatch, KafkaClientFactory, ProducerLike } from './kafka/kafka-client.js';
import type { Headers, InboundRecord, OutboundHeader, OutboundRecord, TopicPartition } from '../pipeline/record.js';

export const REPLAYED_FROM_HEADER = 'verdict-replayed-from';
const VERDICT_HEADER_PREFIX = 'verdict-';

export interface DlqReplayOptions {
  /** The dead-letter topic to read. */
  readonly from: string;
  /** The input topic to produce to. */
  readonly to: string;
  /** Replay only dead letters with one of these error codes; empty or absent: every record. */
  readonly codes?: readonly string[];
  /** Stop after this many matching records. */
  readonly max?: number;
  /** Read and count, produce nothing. */
  readonly dryRun?: boolean;
  /** The reader's group; default `verdict-dlq-replay-<random>`, never committed to. */
  readonly groupId?: string;
  /** Records produced per produce round. Default 500 (`dlqReplaySchema`, where these defaults live). */
  readonly produceBatch?: number;
  /**
   * How long the reader may go without a new record while partitions are still short of their watermark
   * before the replay gives up on them (a compacted or transactional topic has offsets that are never
   * delivered). Default 30 s; the partitions are then reported as incomplete.
   */
  readonly idleTimeoutMs?: number;
  /** Consumer timings (group joins, fetch waits). Defaults (`kafkaConsumerTimingsSchema`) suit a real cluster. */
  readonly consumer?: Partial<ReaderTimings>;
  readonly scheduler?: Clock;
  readonly logger?: Logger;
}

/** The replay reader's timings: the daemon's consumer timings (`kafkaConsumerTimingsSchema`, where the defaults live). */
export type ReaderTimings = KafkaConsumerTimings;

export interface DlqReplayReport {
  /** Records read from the dead-letter topic (below the starting watermarks). */
  readonly read: number;
  /** Of those, records whose error code was asked for (all of them without `codes`). */
  readonly matched: number;
  /** Records produced to the input topic (0 on a dry run). */
  readonly replayed: number;
  /** Matched records by error code (`none` for records without one). */
  readonly byCode: Readonly<Record<string, number>>;
  /** Partitions the reader gave up on before their watermark (see `idleTimeoutMs`). */
  readonly incomplete: ReadonlyArray<{ readonly partition: number; readonly reached: number; readonly highWatermark: number }>;
  /**
   * Matched dead letters written without their payload (`verdict-payload-dropped`): not replayed, since they
   * hold no input; each names where its input is, to be read again from there.
   */
  readonly payloadDropped: ReadonlyArray<TopicPartition & { readonly offset: number }>;
}

/** The record to produce for one dead letter: its original key, value and headers, and where it came from. */
export function replayRecord(record: InboundRecord, to: string): OutboundRecord {
  const headers: OutboundHeader[] = [...originalHeaders(record.headers)];
  headers.push({ key: REPLAYED_FROM_HEADER, value: `${record.topic}/${record.partition}/${record.offset}` });
  return { topic: to, key: record.key, value: record.value, headers };
}

/** How many of a dead letter's first headers are the input's, when it says (`verdict-original-headers`). */
function originalCount(headers: Headers): number | undefined {
  const count = Number(headerText(headers, HEADER.originalHeaders));
  return Number.isInteger(count) && count >= 0 && count <= headers.length ? count : undefined;
}

function originalHeaders(headers: Headers): Headers {
  const count = originalCount(headers);
  if (count !== undefined) return headers.slice(0, count);
  return headers.filter((h) => !h.key.toLowerCase().startsWith(VERDICT_HEADER_PREFIX));
}

/** The headers Verdict added: those after the input's own, so an input's look-alike header is never read as one. */
function addedHeaders(headers: Headers): Headers {
  return headers.slice(originalCount(headers) ?? 0);
}

/** Whether Verdict wrote this dead letter without the input's payload (any case, as HTTP-style names go). */
function payloadDropped(added: Headers): boolean {
  return added.some((h) => h.key.toLowerCase() === HEADER.payloadDropped);
}

/** Replays dead letters as `options` say; resolves with the counts once the starting watermarks are reached. */
export async function replayDeadLetters(factory: KafkaClientFactory, options: DlqReplayOptions): Promise<DlqReplayReport> {
  if (options.from === options.to) throw new ConfigError(`--from and --to are the same topic (${options.from})`);
  if (options.max !== undefined && !(Number.isInteger(options.max) && options.max > 0)) {
    throw new ConfigError(`max must be a positive integer, got ${options.max}`);
  }
  const admin = factory.admin();
  let watermarks;
  try {
    watermarks = await admin.topicOffsets(options.from);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const replay = new Replay(factory, options, new Map(watermarks.map((w) => [w.partition, { next: w.low, high: w.high }])));
  return replay.run();
}

interface PartitionProgress {
  /** The next offset to take; records below it were taken already (a rejoin re-delivers them). */
  next: number;
  /** The high watermark when the replay started: the end. */
  readonly high: number;
}

/** One replay run: a reader feeding a queue, a pump producing it in order, and the end condition. */
class Replay {
  readonly #factory: KafkaClientFactory;
  readonly #options: DlqReplayOptions;
  readonly #progress: Map<number, PartitionProgress>;
  readonly #codes: ReadonlySet<string>;
  readonly #scheduler: Clock;
  readonly #logger: Logger;
  readonly #produceBatch: number;
  readonly #idleTimeoutMs: number;
  readonly #timings: KafkaConsumerTimings;
  readonly #producerOptions: KafkaProducerOptions;
  /** Matched records waiting to be produced, in read order. */
  #queue: OutboundRecord[] = [];
  /** Queued records above which the reader is paused; it resumes at a quarter of this. */
  readonly #highWater: number;
  #paused = false;
  #read = 0;
  #matched = 0;
  #replayed = 0;
  readonly #byCode: Record<string, number> = {};
  readonly #payloadDropped: Array<TopicPartition & { readonly offset: number }> = [];
  #consumer: ConsumerLike | undefined;
  #producer: ProducerLike | undefined;
  #pumping: Promise<void> = Promise.resolve();
  #idleTimer: Subscription | undefined;
  #finished = false;
  /** The first failure (reader crash, produce error); it ends the replay. */
  #error: Error | undefined;
  #finish: () => void = () => undefined;

  constructor(factory: KafkaClientFactory, options: DlqReplayOptions, progress: Map<number, PartitionProgress>) {
    this.#factory = factory;
    this.#options = options;
    this.#progress = progress;
    this.#codes = new Set(options.codes ?? []);
    this.#scheduler = options.scheduler ?? preciseScheduler;
    this.#logger = componentLogger(options.logger ?? silentLogger, 'dlq_replay', { from: options.from, to: options.to });
    const tuning = parseOptions(dlqReplaySchema, { produceBatch: options.produceBatch, idleTimeoutMs: options.idleTimeoutMs, consumer: options.consumer }, 'dead-letter replay options');
    this.#produceBatch = tuning.produceBatch;
    this.#idleTimeoutMs = tuning.idleTimeoutMs;
    this.#timings = tuning.consumer;
    this.#producerOptions = tuning.producer;
    this.#highWater = this.#produceBatch * 8;
  }

  async run(): Promise<DlqReplayReport> {
    if (this.#complete()) return this.#report();
    const done = new Promise<void>((resolve) => { this.#finish = resolve; });
    const consumer = this.#factory.consumer({
      groupId: this.#options.groupId ?? `verdict-dlq-replay-${randomBytes(6).toString('hex')}`,
      topics: [this.#options.from],
      fromBeginning: true,
      partitionsConsumedConcurrently: 1,
      ...this.#timings,
    });
    this.#consumer = consumer;
    try {
      if (this.#options.dryRun !== true) {
        this.#producer = this.#factory.producer(this.#producerOptions);
        await this.#producer.connect();
      }
      this.#armIdleTimer();
      await consumer.start({
        batch: (batch) => this.#onBatch(batch),
        joined: (assignment) => this.#logger.info({ partitions: assignment.map((tp) => tp.partition) }, 'reader joined'),
        rebalancing: () => this.#logger.info('reader rebalancing'),
        crashed: (error) => this.#fail(error),
      });
      await done;
      await this.#pumping;
      if (this.#error !== undefined) throw this.#error;
      return this.#report();
    } finally {
      this.#finished = true;
      this.#idleTimer?.unsubscribe();
      await consumer.stop().catch((err: unknown) => this.#logger.warn({ err }, 'reader stop failed'));
      await this.#producer?.disconnect().catch((err: unknown) => this.#logger.warn({ err }, 'producer disconnect failed'));
    }
  }

  /** Takes the batch's records not yet taken and below the watermark; never refuses (the queue pauses instead). */
  #onBatch(batch: FetchedBatch): boolean {
    if (this.#finished) return false;
    const progress = this.#progress.get(batch.partition);
    if (progress === undefined) return true; // a partition created after the start: beyond the end
    for (const record of batch.records) {
      if (record.offset < progress.next || record.offset >= progress.high) continue;
      progress.next = record.offset + 1;
      this.#take(record);
      if (this.#maxReached()) break;
    }
    this.#armIdleTimer();
    if (this.#queue.length >= this.#highWater && !this.#paused) this.#pause(true);
    this.#pump();
    if (this.#maxReached() || this.#complete()) this.#end();
    return true;
  }

  #take(record: InboundRecord): void {
    this.#read++;
    const added = addedHeaders(record.headers);
    const code = headerText(added, HEADER.errorCode);
    if (this.#codes.size > 0 && (code === undefined || !this.#codes.has(code))) return;
    this.#matched++;
    const label = code ?? 'none';
    this.#byCode[label] = (this.#byCode[label] ?? 0) + 1;
    // Written without the input's key, value and headers (the broker refused them): there is nothing to
    // replay here; the input itself is still at its source offset, which the report lists.
    if (payloadDropped(added)) {
      // Its key is the input's position too (encodePayloadDropped), for when the headers do not say.
      const [, topic = '?', partition = 'NaN', offset = 'NaN'] = /^(.*)\/(\d+)\/(\d+)$/.exec(record.key?.toString('utf8') ?? '') ?? [];
      this.#payloadDropped.push({
        topic: headerText(added, HEADER.sourceTopic) ?? topic,
        partition: Number(headerText(added, HEADER.sourcePartition) ?? partition),
        offset: Number(headerText(added, HEADER.sourceOffset) ?? offset),
      });
      return;
    }
    if (this.#options.dryRun !== true) this.#queue.push(replayRecord(record, this.#options.to));
  }

  /** Produces the queue in rounds, one at a time, so records keep their read order. */
  #pump(): void {
    const producer = this.#producer;
    if (producer === undefined || this.#queue.length === 0) return;
    this.#pumping = this.#pumping.then(async () => {
      while (this.#queue.length > 0) {
        const round = this.#queue.slice(0, this.#produceBatch);
        this.#queue = this.#queue.slice(round.length);
        // The producer retries on its own; what still fails ends the replay (re-running replays it all again).
        await producer.sendBatch([{ topic: this.#options.to, records: round }]);
        this.#replayed += round.length;
        if (this.#paused && this.#queue.length <= this.#highWater / 4) this.#pause(false);
      }
    }).catch((err: unknown) => {
      this.#queue = [];
      this.#fail(err instanceof Error ? err : new TransportError(String(err)));
    });
  }

  #fail(error: Error): void {
    this.#error ??= error;
    this.#end();
  }

  #pause(pause: boolean): void {
    const all: TopicPartition[] = [...this.#progress.keys()].map((partition) => ({ topic: this.#options.from, partition }));
    this.#paused = pause;
    if (pause) this.#consumer?.pause(all);
    else this.#consumer?.resume(all);
  }

  #armIdleTimer(): void {
    this.#idleTimer?.unsubscribe();
    const idleMs = this.#idleTimeoutMs;
    this.#idleTimer = this.#scheduler.schedule(() => {
      // A paused reader is idle on purpose; the pump resumes it.
      if (this.#paused) return this.#armIdleTimer();
      this.#logger.warn({ idleMs, incomplete: this.#incomplete() }, 'no records for too long; ending the replay short of the watermarks');
      this.#end();
    }, idleMs);
  }

  #end(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#idleTimer?.unsubscribe();
    this.#finish();
  }

  #maxReached(): boolean {
    return this.#options.max !== undefined && this.#matched >= this.#options.max;
  }

  #complete(): boolean {
    for (const p of this.#progress.values()) if (p.next < p.high) return false;
    return true;
  }

  #incomplete(): DlqReplayReport['incomplete'] {
    if (this.#maxReached()) return [];
    return [...this.#progress].filter(([, p]) => p.next < p.high)
      .map(([partition, p]) => ({ partition, reached: p.next, highWatermark: p.high }));
  }

  #report(): DlqReplayReport {
    return {
      read: this.#read, matched: this.#matched, replayed: this.#replayed, byCode: { ...this.#byCode }, incomplete: this.#incomplete(),
      payloadDropped: [...this.#payloadDropped],
    };
  }
}
