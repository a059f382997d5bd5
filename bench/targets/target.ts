/**
 * One seam for every system the harness measures: Verdict on either transport and the three baselines.
 * A target owns the system under test, the producer that feeds its input topic and the reader of its
 * output topics; the harness only sends events and is told when each event's output arrived.
 */
import type { LogState } from '../drain.js';
import type { BenchEvent } from '../events.js';
import type { SutMetrics } from '../sut-metrics.js';

export const TARGET_NAMES = [
  'verdict-embedded', 'fused', 'verdict-kafka', 'verdict-kafka-librdkafka', 'passthrough', 'passthrough-librdkafka', 'naive',
  'verdict-embedded-shadow', 'verdict-embedded-no-state', 'verdict-kafka-no-state',
] as const;
export type TargetName = (typeof TARGET_NAMES)[number];
/**
 * What `verdict bench` runs without `--targets`: both Kafka producers side by side (`-librdkafka`: the
 * librdkafka producer; skipped, with the reason, where @confluentinc/kafka-javascript is not installed).
 * `verdict-embedded-shadow` (verdict-embedded with a shadow step, see `--shadow`) is there to be run beside
 * `verdict-embedded` when asked for, and so are the `-no-state` targets (the pipeline with its per-key state
 * taken out: targets/without-state.ts) beside `verdict-embedded` and `verdict-kafka`.
 */
export const DEFAULT_TARGETS: readonly TargetName[] = [
  'verdict-embedded', 'fused', 'verdict-kafka', 'verdict-kafka-librdkafka', 'passthrough', 'passthrough-librdkafka', 'naive',
];

/** The Kafka producer client of a target: named as `kafka.producer.client` names it. */
export type ProducerClientName = 'kafkajs' | 'librdkafka';

/** CPU time of the system under test's own process, µs since it started: all its threads, and its main thread alone. */
export interface SutCpu {
  readonly processUs: number;
  /** null where the platform cannot tell (bench/thread-cpu.ts: Linux only). */
  readonly mainThreadUs: number | null;
}

/**
 * A target that cannot run on this machine (an optional dependency missing): the harness skips it with
 * this message instead of failing the run. `name` is what the harness checks.
 */
export class TargetUnavailableError extends Error {
  override readonly name = 'TargetUnavailableError';
}

export type OutputKind = 'decision' | 'dead-letter';

/** Called when an output record reaches the target's output reader, as soon as it is read. */
export type OutputListener = (id: string, kind: OutputKind) => void;

export interface BenchTarget {
  readonly name: TargetName;
  readonly transport: 'embedded' | 'kafka';
  /** One line for the report: what runs, and how. */
  readonly description: string;
  /** Starts the system under test, the load producer and the output reader. */
  start(onOutput: OutputListener): Promise<void>;
  /** Writes events to the input topic; resolves when the transport accepted them. */
  send(events: readonly BenchEvent[]): Promise<void> | void;
  /** Input records the system under test has not consumed yet (see each target for the exact measure). */
  lag(): Promise<number>;
  /** Resident memory of the process the system under test runs in, in bytes. */
  rss(): Promise<number>;
  /** CPU time (user + system) of the system under test's own process; null when it is the harness's. */
  sutCpu(): Promise<SutCpu | null>;
  /**
   * One scrape of the system under test's Prometheus endpoint (memory, heap, event-loop delay, bounded
   * queues and their bounds); null when it cannot be read. Absent on targets without one of their own
   * (embedded: the system under test is the harness process).
   */
  sutMetrics?(): Promise<SutMetrics | null>;
  /**
   * Where unanswered events stand in the broker: deleted by retention, never accepted, or still there.
   * Without `pending`, only the partitions and outputs (the event counts are 0). Absent on targets that
   * cannot tell (embedded).
   */
  logState?(pending?: Iterable<string>): Promise<LogState>;
  /** Facts for the report (batching, workers, client settings). */
  settings(): Readonly<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Ids of outputs: decisions carry `verdict-event-id`; dead letters keep the input's `bench-id` header. */
export const DECISION_ID_HEADER = 'verdict-event-id';
