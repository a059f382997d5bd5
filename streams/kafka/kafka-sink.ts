/**
 * A Kafka producer behind the `Sink` seam. Each `send` is one produce round (one sendBatch across its
 * topics) that resolves once the brokers acknowledged every record (acks -1 by default). A failure rejects
 * with a TransportError whose `retryable` says whether the pipeline's retry loop should send again; a
 * partly acknowledged round that is sent again duplicates records, which at-least-once delivery allows.
 */
import { TransportError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/log.js';
import type { OutboundRecord, Sink } from '../types.js';
import type { KafkaClientFactory, KafkaConnection, ProducerLike, TopicRecords } from './kafka-client.js';
import type { KafkaProducerOptions } from './kafka-options.js';
import { kafkajsClientFactory } from './kafkajs-client.js';

export interface KafkaSinkOptions extends KafkaConnection {
  /** Defaults: acks -1, no compression, 5 requests in flight, 5 retries from 100 ms up to 5 s. */
  readonly producer?: Partial<KafkaProducerOptions>;
  readonly logger?: Logger;
}

export interface KafkaSinkDeps {
  /** The client library. Default: kafkajs, connected with the options' connection fields. */
  readonly factory?: KafkaClientFactory;
}

export const defaultProducerOptions: KafkaProducerOptions = {
  acks: -1,
  compression: 'none',
  maxInFlightRequests: 5,
  retries: 5,
  initialRetryTime: 100,
  maxRetryTime: 5_000,
};

/** Records grouped by topic, each group in send order (per-key order depends on it). */
export function groupByTopic(records: readonly OutboundRecord[]): TopicRecords[] {
  const topics = new Map<string, OutboundRecord[]>();
  for (const record of records) {
    const list = topics.get(record.topic);
    if (list === undefined) topics.set(record.topic, [record]);
    else list.push(record);
  }
  return [...topics].map(([topic, list]) => ({ topic, records: list }));
}

export class KafkaSink implements Sink {
  readonly #producer: ProducerLike;
  readonly #logger: Logger;
  #connected: Promise<void> | undefined;
  readonly #inflight = new Set<Promise<void>>();
  #closed: Promise<void> | undefined;

  constructor(options: KafkaSinkOptions, deps: KafkaSinkDeps = {}) {
    const logger = options.logger ?? silentLogger;
    this.#logger = logger.child({ component: 'kafka_sink' });
    const factory = deps.factory ?? kafkajsClientFactory(options, logger);
    this.#producer = factory.producer({ ...defaultProducerOptions, ...options.producer });
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

  send(records: readonly OutboundRecord[]): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(new TransportError('send after close', { retryable: false }));
    if (records.length === 0) return Promise.resolve();
    const sent = this.connect().then(() => this.#producer.sendBatch(groupByTopic(records)));
    this.#inflight.add(sent);
    const forget = (): void => { this.#inflight.delete(sent); };
    sent.then(forget, (err: unknown) => {
      forget();
      this.#logger.debug({ err, records: records.length }, 'send failed');
    });
    return sent;
  }

  /** Lets sends in flight finish (or fail), then disconnects. */
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
