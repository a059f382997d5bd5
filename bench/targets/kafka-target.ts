/**
 * The harness side of a Kafka target: fresh topics, the system under test in a child process
 * (kafka-child.ts), a kafkajs producer that writes the offered load to the input topic, and a kafkajs
 * consumer that reads the decision and dead-letter topics and reports each output as it arrives.
 * Lag is the system's consumer group's: input high watermarks minus its committed offsets. The producer
 * notes where each event landed (OffsetBook) and the reader notes gaps in the output offsets, so a drain
 * can tell records the broker deleted from records the system under test has not answered.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Consumer, Producer } from 'kafkajs';
import { TransportError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { LogState } from '../drain.js';
import { sutMetricsOf, type SutMetrics } from '../sut-metrics.js';
import type { AdminLike } from '../../streams/kafka/kafka-client.js';
import { kafkajsClientFactory } from '../../streams/kafka/kafkajs-client.js';
import { loadLibrdkafka, type LibrdkafkaLoad } from '../../streams/kafka/librdkafka-binding.js';
import { BENCH_ID_HEADER, type BenchEvent } from '../events.js';
import type { KafkaCluster } from './kafka-cluster.js';
import { createKafkaTargetTopics } from './kafka-topics.js';
import { OffsetBook } from './offset-book.js';
import { loadBenchPipeline } from './pipeline.js';
import { withoutState } from './without-state.js';
import { baselineKafka, type ChildMessage, type KafkaSutConfig, type KafkaSutKind, type ParentMessage } from './kafka-sut.js';
import type { BenchTopics } from './pipeline.js';
import {
  DECISION_ID_HEADER, TargetUnavailableError, type BenchTarget, type OutputListener, type ProducerClientName, type SutCpu, type TargetName,
} from './target.js';

export interface KafkaTargetOptions {
  readonly name: Extract<TargetName, 'verdict-kafka' | 'verdict-kafka-librdkafka' | 'verdict-kafka-no-state' | 'passthrough' | 'passthrough-librdkafka' | 'naive'>;
  readonly kind: KafkaSutKind;
  /** The system under test's producer (KafkaSutConfig.producerClient). librdkafka: skipped where it is not installed. */
  readonly producerClient: ProducerClientName;
  readonly description: string;
  /** Made when the target starts (a mock broker per target), stopped with it. */
  readonly cluster: () => Promise<KafkaCluster>;
  readonly partitions: number;
  readonly pipelinePath: string;
  readonly runId: string;
  readonly logger: Logger;
  readonly logLevel: string;
  /** Verdict only: the pipeline without its per-key state (`verdict-kafka-no-state`). */
  readonly withoutState?: boolean;
  /** How the librdkafka producer is looked for; default `loadLibrdkafka` (a test passes one that finds nothing). */
  readonly loadLibrdkafka?: () => Promise<LibrdkafkaLoad>;
}

const CHILD_START_TIMEOUT_MS = 60_000;
const CHILD_STOP_TIMEOUT_MS = 15_000;
const SCRAPE_TIMEOUT_MS = 5_000;

interface ChildStats { readonly rssBytes: number; readonly cpu: SutCpu }

export class KafkaTarget implements BenchTarget {
  readonly name: KafkaTargetOptions['name'];
  readonly transport = 'kafka' as const;
  readonly description: string;
  readonly #options: KafkaTargetOptions;
  #cluster: KafkaCluster | undefined;
  #topics: BenchTopics | undefined;
  #groupId = '';
  #changelog: string | null = null;
  #child: ChildProcess | undefined;
  #childSettings: Readonly<Record<string, unknown>> = {};
  #metricsPort: number | undefined;
  #producer: Producer | undefined;
  #reader: Consumer | undefined;
  #admin: AdminLike | undefined;
  #statsSeq = 0;
  readonly #statsWaiters = new Map<number, (stats: ChildStats | null) => void>();
  #sendErrors = 0;
  readonly #book: OffsetBook;
  /** Next expected offset per output partition; a jump is records deleted before the reader got them. */
  readonly #outputNext = new Map<string, number>();
  #outputsDeleted = 0;

  constructor(options: KafkaTargetOptions) {
    this.#options = options;
    this.name = options.name;
    this.description = options.description;
    this.#book = new OffsetBook(options.partitions);
  }

  /** Rejects with TargetUnavailableError, before starting anything, when its producer is not installed. */
  async start(onOutput: OutputListener): Promise<void> {
    const o = this.#options;
    if (o.producerClient === 'librdkafka') {
      const loaded = await (o.loadLibrdkafka ?? loadLibrdkafka)();
      if ('missing' in loaded) throw new TargetUnavailableError(`needs the librdkafka producer: ${loaded.missing} (an optional dependency: README "Choosing the producer")`);
    }
    const cluster = (this.#cluster = await o.cluster());
    const prefix = `bench-${o.runId}-${o.name}`;
    const stateless = o.withoutState === true;
    const { file } = await loadBenchPipeline(o.pipelinePath);
    const { topics, groupId, changelog } = await createKafkaTargetTopics(cluster, {
      prefix, partitions: o.partitions, kind: o.kind, pipeline: stateless ? withoutState(file) : file,
    });
    this.#topics = topics;
    this.#groupId = groupId;
    this.#changelog = changelog;

    const config: KafkaSutConfig = {
      kind: o.kind, brokers: cluster.brokers, clientId: `${prefix}-sut`, groupId, topics,
      pipelinePath: o.pipelinePath, timings: cluster.timings, partitionsConsumedConcurrently: 4, logLevel: o.logLevel,
      producerClient: o.producerClient,
      ...(stateless ? { withoutState: true } : {}),
    };
    const { kafka, producer } = baselineKafka({ brokers: cluster.brokers, clientId: `${prefix}-harness` });
    this.#producer = producer();
    this.#reader = kafka.consumer({ groupId: `${prefix}-reader`, allowAutoTopicCreation: false, ...cluster.timings });
    this.#admin = kafkajsClientFactory({ brokers: cluster.brokers, clientId: `${prefix}-admin`, logLevel: 'nothing' }, o.logger).admin();
    // The child, the producer and the reader start together: each waits on the broker, not on the others.
    await Promise.all([this.#startChild(config), this.#producer.connect(), this.#startReader(topics, onOutput)]);
  }

  send(events: readonly BenchEvent[]): Promise<void> {
    const producer = this.#producer;
    const topic = this.#topics?.input;
    if (producer === undefined || topic === undefined) return Promise.resolve();
    const partitions = this.#book.assign(events);
    // `assign` returns one partition per event, so `partitions[i]` is always there.
    // Never rejects: the open loop keeps going, and events whose send failed are counted as lost.
    return producer
      .send({ topic, acks: 1, messages: events.map((e, i) => ({ key: e.key, value: e.value, headers: e.headers, partition: partitions[i] as number })) })
      .then((acks) => this.#book.accepted(events, partitions, acks), (err: unknown) => {
        this.#book.rejected(events);
        if (this.#sendErrors++ === 0) this.#options.logger.warn({ err, target: this.name }, 'load producer send failed');
      });
  }

  async logState(pending?: Iterable<string>): Promise<LogState> {
    const admin = this.#admin;
    const topic = this.#topics?.input;
    if (admin === undefined || topic === undefined) return { overtakenPartitions: 0, deleted: 0, neverAccepted: 0, outputsDeleted: this.#outputsDeleted };
    const [offsets, committed] = await Promise.all([admin.topicOffsets(topic), admin.committedOffsets(this.#groupId, [topic])]);
    const at = new Map(committed.map((c) => [c.partition, c.offset]));
    const overtakenPartitions = offsets.filter((p) => p.low > (at.get(p.partition) ?? 0)).length;
    const placed = pending === undefined ? { deleted: 0, neverAccepted: 0 } : this.#book.place(pending, new Map(offsets.map((p) => [p.partition, p.low])));
    const busiestUnread = Math.max(0, ...offsets.map((p) => p.high - Math.max(p.low, at.get(p.partition) ?? p.low)));
    return { overtakenPartitions, ...placed, outputsDeleted: this.#outputsDeleted, busiestUnread };
  }

  async lag(): Promise<number> {
    const admin = this.#admin;
    const topic = this.#topics?.input;
    if (admin === undefined || topic === undefined) return 0;
    const [ends, committed] = await Promise.all([admin.topicOffsets(topic), admin.committedOffsets(this.#groupId, [topic])]);
    const at = new Map(committed.map((c) => [c.partition, c.offset]));
    return ends.reduce((sum, p) => sum + Math.max(0, p.high - (at.get(p.partition) ?? p.low)), 0);
  }

  async sutMetrics(): Promise<SutMetrics | null> {
    const port = this.#metricsPort;
    if (port === undefined) return null;
    try {
      // A scrape that takes longer than this is a stalled system under test: the sample is missing, not late.
      const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
      if (!response.ok) return null;
      return sutMetricsOf(await response.text());
    } catch {
      return null;
    }
  }

  async rss(): Promise<number> {
    return (await this.#stats())?.rssBytes ?? 0;
  }

  async sutCpu(): Promise<SutCpu | null> {
    return (await this.#stats())?.cpu ?? null;
  }

  #stats(): Promise<ChildStats | null> {
    const child = this.#child;
    if (child === undefined || !child.connected) return Promise.resolve(null);
    const seq = this.#statsSeq++;
    return new Promise((resolve) => {
      this.#statsWaiters.set(seq, resolve);
      child.send({ type: 'stats', seq } satisfies ParentMessage);
    });
  }

  settings(): Readonly<Record<string, unknown>> {
    return {
      producerClient: this.#options.producerClient,
      ...this.#childSettings,
      partitions: this.#options.partitions,
      broker: this.#cluster?.kind,
      changelogTopic: this.#changelog,
      process: 'child process (system under test), separate from the generator and reader',
      loadProducerSendErrors: this.#sendErrors,
      outputsDeletedBeforeRead: this.#outputsDeleted,
    };
  }

  async stop(): Promise<void> {
    await Promise.allSettled([this.#reader?.disconnect(), this.#producer?.disconnect(), this.#admin?.disconnect()]);
    await this.#stopChild();
    await this.#cluster?.stop();
  }

  #startChild(config: KafkaSutConfig): Promise<void> {
    const child = fork(fileURLToPath(new URL('./kafka-child.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // VERDICT_BENCH_CHILD_FLAGS passes node flags to the system under test only (e.g. --cpu-prof to profile it).
      execArgv: [...process.execArgv, ...(process.env['VERDICT_BENCH_CHILD_FLAGS']?.split(' ').filter(Boolean) ?? [])],
    });
    this.#child = child;
    return new Promise<void>((resolve, reject) => {
      const fail = (message: string): void => {
        clearTimeout(timer);
        reject(new TransportError(`${this.name}: ${message}`, { retryable: false }));
      };
      const timer = setTimeout(() => fail(`system under test not started within ${CHILD_START_TIMEOUT_MS} ms`), CHILD_START_TIMEOUT_MS);
      child.on('message', (m: ChildMessage) => {
        switch (m.type) {
          case 'started':
            clearTimeout(timer);
            this.#childSettings = m.settings;
            this.#metricsPort = m.metricsPort;
            resolve();
            break;
          case 'error':
            fail(m.message);
            break;
          case 'stats':
            this.#statsWaiters.get(m.seq)?.({ rssBytes: m.rssBytes, cpu: { processUs: m.cpuUs, mainThreadUs: m.mainThreadCpuUs } });
            this.#statsWaiters.delete(m.seq);
            break;
          case 'stopped':
            break;
        }
      });
      child.once('exit', (code) => {
        fail(`system under test exited (code ${code})`);
        for (const w of this.#statsWaiters.values()) w(null);
        this.#statsWaiters.clear();
      });
      child.send({ type: 'start', config } satisfies ParentMessage);
    });
  }

  async #startReader(topics: BenchTopics, onOutput: OutputListener): Promise<void> {
    const reader = this.#reader;
    if (reader === undefined) return;
    await reader.connect();
    await reader.subscribe({ topics: [topics.output, topics.deadLetter], fromBeginning: true });
    await reader.run({
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch }) => {
        const kind = batch.topic === topics.deadLetter ? 'dead-letter' : 'decision';
        const where = `${batch.topic}/${batch.partition}`;
        for (const m of batch.messages) {
          // Offsets of a plain topic are contiguous: a jump forward is records the broker deleted unread.
          const offset = Number(m.offset);
          const expected = this.#outputNext.get(where) ?? 0;
          if (offset > expected) this.#outputsDeleted += offset - expected;
          if (offset >= expected) this.#outputNext.set(where, offset + 1);
          const h = m.headers ?? {};
          const id = h[DECISION_ID_HEADER] ?? h[BENCH_ID_HEADER];
          if (id === undefined) continue;
          const key = id.toString();
          this.#book.answered(key);
          onOutput(key, kind);
        }
        return Promise.resolve();
      },
    });
  }

  async #stopChild(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_TIMEOUT_MS);
    if (child.connected) child.send({ type: 'stop' } satisfies ParentMessage);
    else child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  }
}
