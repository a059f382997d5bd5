/**
 * A Kafka producer behind the `Sink` seam. A `send` resolves once the brokers acknowledged every one of its
 * records (acks -1 by default). A failure rejects with a TransportError whose `retryable` says whether the
 * pipeline's retry loop should send again; a partly acknowledged round that is sent again duplicates
 * records, which at-least-once delivery allows.
 *
 * Sends are coalesced: at most `maxOutstandingRounds` produce rounds (one sendBatch across topics each) are
 * outstanding, and sends that arrive meanwhile go out together in the next round, in arrival order. An idle
 * sink sends at once, so this adds no latency; a busy one sends fewer, larger requests, which is where
 * kafkajs spends less per record (measured here: ~28 µs of CPU a record at 10 records a request, ~17 µs at
 * 200). A failed round rejects every send in it; each caller retries its own records.
 *
 * A record the brokers refuse for itself (too large, invalid) is reported to its caller, and the others of
 * its round are written. The librdkafka producer says which records were refused (a delivery report per
 * record). kafkajs cannot: a round it reports refused (a `RecordRejectedError`) is sent again in halves, and
 * halves of halves, until every refused record is alone, as the Java producer splits a batch that is too
 * large; records of a half already written may then be written twice (at-least-once); none is dropped.
 */
import { RecordRejectedError, TransportError, type VerdictError } from '../../core/errors.js';
import { componentLogger, silentLogger, type Logger } from '../../core/log.js';
import { parseOptions } from '../../core/options.js';
import type { RejectedRecord, SendOptions, Sink } from '../types.js';
import type { OutboundRecord } from '../../pipeline/record.js';
import type { KafkaClientFactory, KafkaConnection, ProducerLike, SendBatchOptions, TopicRecords } from './kafka-client.js';
import { kafkaSinkSchema, type KafkaProducerOptions } from '../../config/kafka-options.js';
import { kafkaClientFactory } from './client-factory.js';

/**
 * Loose: what is left out is `kafkaSinkSchema`'s default (config/kafka-options.ts, the one place they live);
 * a bad value throws `CONFIG_INVALID`.
 */
export interface KafkaSinkOptions extends KafkaConnection {
  /** Defaults (`kafkaProducerSchema`): acks -1, no compression, 5 requests in flight, 5 retries from 100 ms up to 5 s. */
  readonly producer?: Partial<KafkaProducerOptions>;
  /** Produce rounds outstanding at once; later sends wait and are merged. Default 2. */
  readonly maxOutstandingRounds?: number;
  /** Records one merged round carries at most (a single larger send still goes whole). Default 4,096. */
  readonly maxRecordsPerRound?: number;
  /** Default: silent. Logs as `component: kafka_sink`. */
  readonly logger?: Logger;
}

interface QueuedSend {
  readonly records: readonly OutboundRecord[];
  readonly whole: boolean;
  readonly avoidNative: boolean;
  readonly resolve: (rejected: readonly RejectedRecord[]) => void;
  readonly reject: (err: unknown) => void;
}

export interface KafkaSinkDeps {
  /** The client library. Default: `kafkaClientFactory` (kafkajs; the producer `producer.client` names), connected with the options' connection fields. */
  readonly factory?: KafkaClientFactory;
}


/** Records grouped by topic, each group in send order (per-key order depends on it). */
export function groupByTopic(records: readonly OutboundRecord[]): TopicRecords[] {
  return groupByTopicWithPositions(records).batch;
}

/** `groupByTopic`, and where each grouped record was in `records`: `positions[topicIndex][recordIndex]`. */
function groupByTopicWithPositions(records: readonly OutboundRecord[]): { batch: TopicRecords[]; positions: number[][] } {
  const topics = new Map<string, { records: OutboundRecord[]; positions: number[] }>();
  records.forEach((record, i) => {
    const group = topics.get(record.topic);
    if (group === undefined) topics.set(record.topic, { records: [record], positions: [i] });
    else { group.records.push(record); group.positions.push(i); }
  });
  const groups = [...topics];
  return { batch: groups.map(([topic, g]) => ({ topic, records: g.records })), positions: groups.map(([, g]) => g.positions) };
}

/**
 * A `Sink` on a Kafka producer (kafkajs by default, or librdkafka: `producer.client`; not idempotent). Construction checks the options
 * (`CONFIG_INVALID`) and connects nothing; `connect()` (or the first send) does, rejecting with
 * `TransportError` (TRANSPORT_FAILED) when the brokers cannot be reached.
 */
export class KafkaSink implements Sink {
  readonly #producer: ProducerLike;
  readonly #logger: Logger;
  #connected: Promise<void> | undefined;
  readonly #inflight = new Set<Promise<readonly RejectedRecord[]>>();
  readonly #queue: QueuedSend[] = [];
  readonly #maxOutstanding: number;
  readonly #maxRecordsPerRound: number;
  #outstanding = 0;
  #closed: Promise<void> | undefined;

  constructor(options: KafkaSinkOptions, deps: KafkaSinkDeps = {}) {
    const logger = options.logger ?? silentLogger;
    const { producer, maxOutstandingRounds, maxRecordsPerRound } = parseOptions(kafkaSinkSchema, options, 'Kafka sink options');
    this.#maxOutstanding = maxOutstandingRounds;
    this.#maxRecordsPerRound = maxRecordsPerRound;
    this.#logger = componentLogger(logger, 'kafka_sink');
    const factory = deps.factory ?? kafkaClientFactory(options, logger);
    this.#producer = factory.producer(producer);
  }

  /** Connects now rather than on the first send; a failed connect is tried again by the next call. */
  connect(): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(new TransportError('connect after close', { retryable: false }));
    this.#connected ??= this.#producer.connect().then(
      () => this.#logger.info('producer connected'),
      (err: unknown) => {
        this.#connected = undefined;
        throw err;
      },
    );
    return this.#connected;
  }

  send(records: readonly OutboundRecord[], options: SendOptions = {}): Promise<readonly RejectedRecord[]> {
    if (this.#closed !== undefined) return Promise.reject(new TransportError('send after close', { retryable: false }));
    if (records.length === 0) return Promise.resolve([]);
    const whole = options.whole === true;
    const avoidNative = options.avoidNative === true;
    const sent = new Promise<readonly RejectedRecord[]>((resolve, reject) => this.#queue.push({ records, whole, avoidNative, resolve, reject }));
    this.#inflight.add(sent);
    const forget = (): void => { this.#inflight.delete(sent); };
    sent.then(forget, forget);
    this.#pump();
    return sent;
  }

  /** Starts rounds while fewer than the bound are outstanding, each taking the queued sends that fit. */
  #pump(): void {
    while (this.#outstanding < this.#maxOutstanding && this.#queue.length > 0) {
      const round: QueuedSend[] = [this.#queue.shift()!];
      const { whole, avoidNative } = round[0]!;
      let count = round[0]!.records.length;
      // Whole sends are merged only with whole sends, and sends that avoid native code with their like: a
      // producer may send those another way (see SendBatchOptions).
      const alike = (q: QueuedSend): boolean => q.whole === whole && q.avoidNative === avoidNative;
      while (this.#queue.length > 0 && alike(this.#queue[0]!) && count + this.#queue[0]!.records.length <= this.#maxRecordsPerRound) {
        const next = this.#queue.shift()!;
        round.push(next);
        count += next.records.length;
      }
      const records = round.length === 1 ? round[0]!.records : round.flatMap((q) => q.records);
      this.#outstanding++;
      void this.connect()
        .then(() => this.#isolating(records, { whole, avoidNative }))
        .then(
          (refused) => {
            let at = 0;
            for (const q of round) {
              const rejected: RejectedRecord[] = [];
              for (let i = 0; i < q.records.length; i++) {
                const error = refused[at + i];
                if (error !== undefined) rejected.push({ index: i, error });
              }
              at += q.records.length;
              q.resolve(rejected);
            }
          },
          (err: unknown) => {
            this.#logger.debug({ err, records: count, sends: round.length }, 'send failed');
            for (const q of round) q.reject(err);
          },
        )
        .finally(() => {
          this.#outstanding--;
          this.#pump();
        });
    }
  }

  /**
   * Sends records. The producer lists the records the brokers refused for themselves when it can tell which;
   * when it cannot (it rejects with a RecordRejectedError), the halves are sent again, one after the other,
   * down to single records. Returns the refusal of each refused record by position (sparse).
   */
  async #isolating(records: readonly OutboundRecord[], options: SendBatchOptions): Promise<Array<VerdictError | undefined>> {
    try {
      const { batch, positions } = groupByTopicWithPositions(records);
      const refusals = await this.#producer.sendBatch(batch, options);
      const refused = new Array<VerdictError | undefined>(records.length);
      for (const { topicIndex, recordIndex, error } of refusals) {
        const at = positions[topicIndex]?.[recordIndex];
        if (at === undefined) continue;
        this.#logger.warn({ err: error.toJSON(), topic: records[at]!.topic }, 'record refused by the broker');
        refused[at] = error;
      }
      return refused;
    } catch (err) {
      if (!(err instanceof RecordRejectedError)) throw err;
      if (records.length === 1) {
        this.#logger.warn({ err: err.toJSON(), topic: records[0]!.topic }, 'record refused by the broker');
        return [err];
      }
      const half = Math.ceil(records.length / 2);
      const head = await this.#isolating(records.slice(0, half), options);
      const tail = await this.#isolating(records.slice(half), options);
      const refused = new Array<VerdictError | undefined>(records.length);
      head.forEach((e, i) => { refused[i] = e; });
      tail.forEach((e, i) => { refused[half + i] = e; });
      return refused;
    }
  }

  /** Lets sends in flight finish (or fail), then disconnects. */
  /** Refuses later sends, waits for every send made (acknowledged or failed), then disconnects; idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.allSettled([...this.#inflight]);
      if (this.#connected !== undefined) {
        await this.#connected.catch(() => undefined);
        await this.#producer.disconnect();
      }
      this.#logger.info('producer closed');
    })();
    return this.#closed;
  }
}
