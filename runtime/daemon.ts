/**
 * The long-running daemon: one pipeline between Kafka topics, with an explicit lifecycle.
 *
 *   starting → running → draining → stopped        (failed from any state)
 *
 * Stopping (SIGTERM, SIGINT) stops fetching, waits for in-flight events to be decided and acknowledged,
 * commits, and closes, all raced against `shutdown.drainTimeoutMs`; whatever is abandoned then was never
 * committed and is read again by the next owner of its partition.
 */
import { BehaviorSubject } from 'rxjs';
import type { LoadedDaemonConfig } from '../config/load-daemon.js';
import { asVerdictError } from '../core/errors.js';
import { componentLogger, type Logger } from '../core/log.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { startMetricsServer, type MetricsServer } from '../core/metrics-server.js';
import type { DecisionStream } from '../streams/runtime/decision-stream.js';
import { KafkaSink } from '../streams/kafka/kafka-sink.js';
import { KafkaSource } from '../streams/kafka/kafka-source.js';
import { Engine } from './engine.js';

export type DaemonState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';
const STATES: readonly DaemonState[] = ['starting', 'running', 'draining', 'stopped', 'failed'];
const LAG_SAMPLE_MS = 5_000;

export interface StopReport {
  readonly drained: boolean;
  readonly abandoned: number;
}

export class Daemon {
  readonly state$ = new BehaviorSubject<DaemonState>('starting');
  readonly metrics: Metrics;
  readonly #loaded: LoadedDaemonConfig;
  readonly #logger: Logger;
  #engine: Engine | undefined;
  #source: KafkaSource | undefined;
  #sink: KafkaSink | undefined;
  #stream: DecisionStream | undefined;
  #server: MetricsServer | undefined;
  #stopping: Promise<StopReport> | undefined;
  #lagTimer: ReturnType<typeof setInterval> | undefined;
  /** The lag sample in flight: awaited before the source closes, or it would reconnect the source's admin. */
  #lagSample: Promise<void> | undefined;

  constructor(loaded: LoadedDaemonConfig, logger: Logger) {
    this.#loaded = loaded;
    this.#logger = componentLogger(logger, 'daemon');
    this.metrics = createMetrics({ processMetrics: true });
    this.state$.subscribe((state) => {
      for (const s of STATES) this.metrics.lifecycle.set({ state: s }, s === state ? 1 : 0);
      this.#logger.info({ state }, 'lifecycle');
    });
  }

  get metricsPort(): number | undefined {
    return this.#server?.port;
  }

  async start(): Promise<void> {
    const { config, pipelinePath, overridden } = this.#loaded;
    this.#logger.info({ pipeline: pipelinePath, brokers: config.kafka.brokers, groupId: config.kafka.groupId, overridden }, 'starting');
    try {
      if (config.metrics.enabled) {
        this.#server = await startMetricsServer({
          registry: this.metrics.registry, host: config.metrics.host, port: config.metrics.port,
          remote: () => this.#engine?.workerMetrics() ?? Promise.resolve([]),
          // Not ready while consumers crash-loop or a partition is halted: both need an operator.
          ready: () => this.state$.value === 'running' && this.#source?.crashLoop() === undefined && (this.#stream?.halted().length ?? 0) === 0,
        });
        this.#logger.info({ port: this.#server.port }, 'metrics endpoint listening');
      }
      this.#engine = await Engine.create(pipelinePath, { metrics: this.metrics, logger: this.#logger });
      const { input } = this.#engine.pipeline;
      const { kafka } = config;
      this.#source = new KafkaSource({ ...kafka, topics: [input.topic], logger: this.#logger }, { metrics: this.metrics });
      this.#sink = new KafkaSink({ ...kafka, producer: kafka.producer, logger: this.#logger });
      await this.#sink.connect();
      await this.#engine.prepareStream();
      this.#stream = this.#engine.stream(this.#source, this.#sink, { stream: config.stream });
      this.#stream.state$.subscribe((s) => {
        if (s === 'failed') void this.#fail(this.#stream?.failure ?? new Error('decision stream failed'));
      });
      this.#sampleLag();
      this.state$.next('running');
    } catch (err) {
      await this.#fail(err);
      throw err;
    }
  }

  /** Samples consumer lag into the metrics every few seconds (an admin round-trip, so not per batch). */
  #sampleLag(): void {
    const source = this.#source;
    if (source === undefined) return;
    this.#lagTimer = setInterval(() => {
      if (this.#lagSample !== undefined) return;
      this.#lagSample = source.lag().then(
        (lags) => { for (const l of lags) this.metrics.consumerLag.set({ topic: l.topic, partition: String(l.partition) }, l.lag); },
        (err: unknown) => this.#logger.debug({ err: asVerdictError(err).toJSON() }, 'lag sample failed'),
      ).finally(() => { this.#lagSample = undefined; });
    }, LAG_SAMPLE_MS);
    this.#lagTimer.unref();
  }

  /**
   * Stops sampling before anything closes: a sample running into the source's close would connect its admin
   * client again, and those sockets would keep the process alive after `stopped`.
   */
  async #stopSampling(): Promise<void> {
    clearInterval(this.#lagTimer);
    await this.#lagSample;
  }

  /** Graceful stop; idempotent. */
  stop(): Promise<StopReport> {
    this.#stopping ??= this.#drainAndClose();
    return this.#stopping;
  }

  async #drainAndClose(): Promise<StopReport> {
    const { drainTimeoutMs } = this.#loaded.config.shutdown;
    if (this.state$.value === 'running') this.state$.next('draining');
    const report = (await this.#stream?.drain(drainTimeoutMs)) ?? { drained: true, abandoned: 0 };
    this.#logger.info(report, report.drained ? 'drained' : 'drain timed out; abandoned events are re-read after restart');
    await this.#stopSampling();
    await this.#closeAll();
    if (this.state$.value !== 'failed') this.state$.next('stopped');
    this.state$.complete();
    return report;
  }

  async #closeAll(): Promise<void> {
    const steps: Array<[string, (() => Promise<void>) | undefined]> = [
      ['source', this.#source && (() => this.#source!.close())],
      ['sink', this.#sink && (() => this.#sink!.close())],
      ['engine', this.#engine && (() => this.#engine!.close())],
      ['metrics server', this.#server && (() => this.#server!.close())],
    ];
    for (const [what, close] of steps) {
      try {
        await close?.();
      } catch (err) {
        this.#logger.warn({ err: asVerdictError(err).toJSON(), what }, 'close failed');
      }
    }
  }

  async #fail(err: unknown): Promise<void> {
    if (this.state$.value === 'failed' || this.state$.value === 'stopped') return;
    this.#logger.error({ err: asVerdictError(err).toJSON() }, 'daemon failed');
    this.state$.next('failed');
    this.#stopping ??= this.#stopSampling().then(() => this.#closeAll()).then(() => ({ drained: false, abandoned: this.#stream?.inflight ?? 0 }));
    await this.#stopping;
  }
}
