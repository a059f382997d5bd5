/**
 * The systems under test on Kafka run in a child process of their own (kafka-child.ts), as a daemon would:
 * the harness's generator and output reader keep the parent's event loop, the system under test gets one
 * to itself. This file is the contract between the two: the start configuration and the IPC messages.
 */
import { Kafka, Partitioners, logLevel, type Consumer, type Producer } from 'kafkajs';
import type { BenchTopics } from './pipeline.js';
import type { ProducerClientName } from './target.js';

export type KafkaSutKind = 'verdict' | 'passthrough' | 'naive';

/** Consumer group timings; against the mock broker, MOCK_CONSUMER_TIMINGS (see mock-kafka/mock-broker.ts). */
export interface ConsumerTimings {
  readonly sessionTimeout: number;
  readonly rebalanceTimeout: number;
  readonly heartbeatInterval: number;
  readonly maxWaitTimeInMs: number;
}

export interface KafkaSutConfig {
  readonly kind: KafkaSutKind;
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly groupId: string;
  readonly topics: BenchTopics;
  readonly pipelinePath: string;
  readonly timings: ConsumerTimings;
  /** Partitions whose batches kafkajs hands over concurrently (Verdict's default, for passthrough too). */
  readonly partitionsConsumedConcurrently: number;
  readonly logLevel: string;
  /**
   * The client that produces: Verdict's `kafka.producer.client` (verdict), or the raw client the passthrough
   * produces with (kafkajs `sendBatch`, or librdkafka's native Producer: passthrough-librdkafka.ts). The
   * consumer is kafkajs in every case; naive takes kafkajs only.
   */
  readonly producerClient: ProducerClientName;
  /** Verdict only: run the pipeline without its per-key state (targets/without-state.ts). */
  readonly withoutState?: boolean;
}

export type ParentMessage =
  | { readonly type: 'start'; readonly config: KafkaSutConfig }
  | { readonly type: 'stats'; readonly seq: number }
  | { readonly type: 'stop' };

export type ChildMessage =
  /** `metricsPort`: the child's Prometheus endpoint on 127.0.0.1 (`/metrics`, process metrics included). */
  | { readonly type: 'started'; readonly settings: Readonly<Record<string, unknown>>; readonly metricsPort: number }
  /** `cpuUs`: the whole process (all threads); `mainThreadCpuUs`: its main thread alone, null off Linux (bench/thread-cpu.ts). */
  | { readonly type: 'stats'; readonly seq: number; readonly rssBytes: number; readonly cpuUs: number; readonly mainThreadCpuUs: number | null }
  | { readonly type: 'stopped' }
  | { readonly type: 'error'; readonly message: string };

export interface RunningSut {
  readonly settings: Readonly<Record<string, unknown>>;
  /** Metrics kept in worker threads (Verdict's block workers), merged into each scrape as the daemon does. */
  readonly workerMetrics?: () => Promise<unknown[]>;
  stop(): Promise<void>;
}

/** The plain kafkajs client the baselines use: what a team would configure first, not idempotent
 * (the mock broker cannot give out producer ids), murmur2 partitioning like Verdict's sink. */
export function baselineKafka(config: Pick<KafkaSutConfig, 'brokers' | 'clientId'>) {
  const kafka = new Kafka({ clientId: config.clientId, brokers: [...config.brokers], logLevel: logLevel.NOTHING });
  return {
    kafka,
    producer: () => kafka.producer({ idempotent: false, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner }),
  };
}

/** The baselines' client pair: a connected producer and a connected consumer subscribed to the input topic. */
export async function connectBaseline(config: KafkaSutConfig): Promise<{ consumer: Consumer; producer: Producer }> {
  const producer = baselineKafka(config).producer();
  await producer.connect();
  return { consumer: await connectBaselineConsumer(config), producer };
}

/** The baselines' consumer alone, connected and subscribed to the input topic. */
export async function connectBaselineConsumer(config: KafkaSutConfig): Promise<Consumer> {
  const consumer = baselineKafka(config).kafka.consumer({ groupId: config.groupId, allowAutoTopicCreation: false, ...config.timings });
  await consumer.connect();
  await consumer.subscribe({ topics: [config.topics.input], fromBeginning: true });
  return consumer;
}
