/**
 * The long-running daemon: one pipeline between Kafka topics, with an explicit lifecycle (core/lifecycle.ts).
 *
 *   starting → running → draining → stopped        (failed from any state but stopped)
 *
 * Stopping (SIGTERM, SIGINT) stops fetching, waits for in-flight events to be decided and acknowledged,
 * commits, and closes, the whole of it raced against `shutdown.drainTimeoutMs` (the forced-stop timer). When
 * the timer fires the stop ends `stopped` with `drained: false` and a log line; whatever was abandoned was
 * never committed and is read again by the next owner of its partition.
 */
import type { Observable, SchedulerAction, Subscription } from 'rxjs';
import { preciseScheduler, type Clock } from '../core/clock.js';
import { LIFECYCLE_STATES, Lifecycle, stopWithin, type LifecycleState } from '../core/lifecycle.js';
import type { LoadedDaemonConfig } from '../config/load-daemon.js';
import { asVerdictError } from '../core/errors.js';
import { componentLogger, type Logger } from '../core/log.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { startMetricsServer, type HttpEndpoint, type MetricsServer } from '../core/metrics-server.js';
import type { PartitionedStream } from '../streams/runtime/partitioned-stream.js';
import { KafkaSink } from '../streams/kafka/kafka-sink.js';
import { KafkaSource, type KafkaPartitionLag } from '../streams/kafka/kafka-source.js';
import { adminMounts, adminPlacement, startAdminListener } from './admin/admin-endpoint.js';
import { createAdminHandler } from './admin/admin-handler.js';
import { DaemonAdmin } from './admin/daemon-admin.js';
import { CrashGuard, openCrashGuard } from './crash-guard.js';
import { Engine } from './engine.js';
import type { LiveModels } from './live-models.js';

const LAG_SAMPLE_MS = 5_000;

/** How a daemon stopped (`Daemon.stop()`). */
export interface StopReport {
  /** True when every in-flight event was decided, acknowledged and committed before `shutdown.drainTimeoutMs`. */
  readonly drained: boolean;
  /** Events read but not committed when the stop gave up (0 when drained): the next owner of their partition reads them again. */
  readonly abandoned: number;
}

export interface DaemonDeps {
  /** Lag sampling and the forced-stop timer. Default: the production clock. */
  readonly clock?: Clock;
}

/**
 * Build one with `createDaemon` (runtime/create-daemon.ts), or from a `LoadedDaemonConfig` and a pino logger
 * (`verdict run` does). It owns its own Prometheus registry (`metrics`, process metrics included), served on
 * `metrics.host:metrics.port` (`/metrics`, `/readyz`) unless `metrics.enabled` is false.
 */
export class Daemon {
  /** This daemon's metrics, on their own prom-client registry (core/metrics.ts lists them). */
  readonly metrics: Metrics;
  readonly #lifecycle = new Lifecycle();
  readonly #clock: Clock;
  /** Aborted by the forced-stop timer (the whole stop ran out of time). */
  readonly #stop = new AbortController();
  readonly #loaded: LoadedDaemonConfig;
  readonly #logger: Logger;
  #engine: Engine | undefined;
  #source: KafkaSource | undefined;
  #sink: KafkaSink | undefined;
  #stream: PartitionedStream | undefined;
  /** The crash journal and poison isolation around the stream's blocks (config `crashJournal`). */
  #guard: CrashGuard | undefined;
  #server: MetricsServer | undefined;
  /** The admin API's own listener (config `admin`), when it does not share the metrics endpoint. */
  #admin: HttpEndpoint | undefined;
  /** The latest consumer lag sample, for the admin status. */
  #lag: { readonly at: number; readonly partitions: readonly KafkaPartitionLag[] } | undefined;
  #stopping: Promise<StopReport> | undefined;
  #lagTimer: Subscription | undefined;
  /** The lag sample in flight: awaited before the source closes, or it would reconnect the source's admin. */
  #lagSample: Promise<void> | undefined;

  constructor(loaded: LoadedDaemonConfig, logger: Logger, deps: DaemonDeps = {}) {
    this.#loaded = loaded;
    this.#clock = deps.clock ?? preciseScheduler;
    this.#logger = componentLogger(logger, 'daemon');
    this.metrics = createMetrics({ processMetrics: true });
    this.#lifecycle.state$.subscribe((state) => {
      for (const s of LIFECYCLE_STATES) this.metrics.lifecycle.set({ state: s }, s === state ? 1 : 0);
      this.#logger.info({ state }, 'lifecycle');
    });
  }

  /** The lifecycle state now. */
  get state(): LifecycleState {
    return this.#lifecycle.state;
  }

  /** The lifecycle states, the current one first; completes on stopped or failed. */
  get state$(): Observable<LifecycleState> {
    return this.#lifecycle.state$;
  }

  /** The pipeline's live model versions (`status()`, `refresh()`) once started; undefined before. */
  get models(): LiveModels | undefined {
    return this.#engine?.models;
  }

  /** The port the metrics endpoint listens on once started (the bound one when `metrics.port` is 0); undefined before, or when disabled. */
  get metricsPort(): number | undefined {
    return this.#server?.port;
  }

  /**
   * The port the admin API answers on once started: its own listener's, or the metrics endpoint's when it
   * shares it; undefined before start, or when the admin API is off (no `admin.token`).
   */
  get adminPort(): number | undefined {
    const placement = adminPlacement(this.#loaded.config);
    return placement === 'own' ? this.#admin?.port : placement === 'metrics' ? this.#server?.port : undefined;
  }

  /**
   * Serves metrics and the admin API, loads the pipeline and its models, connects the sink, subscribes the source to the
   * pipeline's input topic, and resolves once `running`. Call it once. On any failure the daemon moves to
   * `failed`, closes what it opened, and rejects with what failed: `ConfigError` (CONFIG_INVALID: a bad
   * pipeline file, a missing model), `ServerListenError` (SERVER_LISTEN_FAILED: the metrics port),
   * `TransportError` (TRANSPORT_FAILED: the producer cannot connect). `ServerListenError` also names the
   * admin port when the admin API has a listener of its own.
   * A failure after `running` (the stream failed) is seen on `state$` as `failed`, not as a rejection.
   */
  async start(): Promise<void> {
    const { config, pipelinePath, overridden } = this.#loaded;
    this.#logger.info({ pipeline: pipelinePath, brokers: config.kafka.brokers, groupId: config.kafka.groupId, overridden }, 'starting');
    const placement = adminPlacement(config);
    const admin = createAdminHandler({
      token: config.admin.token, logger: this.#logger, metrics: this.metrics,
      target: new DaemonAdmin({
        loaded: this.#loaded, metrics: this.metrics,
        lifecycle: () => this.#lifecycle.state, engine: () => this.#engine, stream: () => this.#stream, lag: () => this.#lag,
        crashGuard: () => this.#guard,
        fetchWait: () => this.#source?.fetchWait(),
        now: () => this.#clock.now(),
      }),
    });
    try {
      if (config.metrics.enabled) {
        this.#server = await startMetricsServer({
          registry: this.metrics.registry, host: config.metrics.host, port: config.metrics.port,
          remote: () => this.#engine?.workerMetrics() ?? Promise.resolve([]),
          // Not ready while consumers crash-loop or a partition is halted (both need an operator), nor while a
          // partition's state is being restored (its records wait).
          ready: () => this.#lifecycle.state === 'running' && this.#source?.crashLoop() === undefined && (this.#stream?.halted().length ?? 0) === 0
            && this.#stream?.restoring !== true,
          mounts: adminMounts(placement, admin),
        });
        this.#logger.info({ port: this.#server.port }, 'metrics endpoint listening');
      }
      this.#admin = await startAdminListener(placement, config, admin);
      this.#logger.info({ placement, host: placement === 'off' ? undefined : config.admin.host, port: this.adminPort }, placement === 'off' ? 'admin API off (no admin.token)' : 'admin API listening');
      this.#engine = await Engine.create(pipelinePath, { metrics: this.metrics, logger: this.#logger });
      const { input } = this.#engine.pipeline;
      const { kafka } = config;
      this.#source = new KafkaSource({ ...kafka, topics: [input.topic], logger: this.#logger }, { metrics: this.metrics });
      this.#sink = new KafkaSink({ ...kafka, producer: kafka.producer, logger: this.#logger });
      await this.#sink.connect();
      await this.#engine.prepareStream();
      this.#guard = openCrashGuard({
        config: config.crashJournal, groupId: kafka.groupId, pipeline: this.#engine.pipeline, blockSize: config.stream.blockSize,
        clock: this.#clock, logger: this.#logger, metrics: this.metrics,
        logLevel: this.#logger.isLevelEnabled('info') ? this.#logger.level : null,
      });
      this.#stream = this.#engine.stream(this.#source, this.#sink, { stream: config.stream, ...(this.#guard === undefined ? {} : { guard: this.#guard }) });
      this.#stream.state$.subscribe((s) => {
        if (s === 'failed') void this.#fail(this.#stream?.failure ?? new Error('decision stream failed'));
      });
      this.#sampleLag();
      this.#lifecycle.moveTo('running');
    } catch (err) {
      await this.#fail(err);
      throw err;
    }
  }

  /** Samples consumer lag into the metrics every few seconds (an admin round-trip, so not per batch). */
  #sampleLag(): void {
    const source = this.#source;
    if (source === undefined) return;
    const sample = (): void => {
      if (this.#lagSample !== undefined) return;
      this.#lagSample = source.lag().then(
        (lags) => {
          for (const l of lags) this.metrics.consumerLag.set({ topic: l.topic, partition: String(l.partition) }, l.lag);
          this.#lag = { at: this.#clock.now(), partitions: lags };
        },
        (err: unknown) => this.#logger.debug({ err: asVerdictError(err).toJSON() }, 'lag sample failed'),
      ).finally(() => { this.#lagSample = undefined; });
    };
    // Every path out of running (stop, failure) cancels it in #stopSampling, so it never holds the process.
    this.#lagTimer = this.#clock.schedule(function tick(this: SchedulerAction<undefined>) {
      sample();
      this.schedule(undefined, LAG_SAMPLE_MS);
    }, LAG_SAMPLE_MS);
  }

  /**
   * Stops sampling before anything closes: a sample running into the source's close would connect its admin
   * client again, and those sockets would keep the process alive after `stopped`.
   */
  async #stopSampling(): Promise<void> {
    this.#lagTimer?.unsubscribe();
    await this.#lagSample;
  }

  /**
   * Graceful stop, idempotent (every call returns the same promise): stop fetching, drain in-flight events,
   * commit, close, all within `shutdown.drainTimeoutMs` (default 15 000 ms, config/daemon-schema.ts). Never
   * rejects; ends `stopped` (or, after a failure, resolves with `{ drained: false }` once closed).
   */
  stop(): Promise<StopReport> {
    this.#stopping ??= this.#drainAndClose();
    return this.#stopping;
  }

  /**
   * Drain, commit and close under one forced-stop timer of `shutdown.drainTimeoutMs`. The stream's own drain
   * has the same bound; the daemon's timer also covers the closes after it (a producer flush or consumer
   * leave that hangs on a broker that went away).
   */
  async #drainAndClose(): Promise<StopReport> {
    const { drainTimeoutMs } = this.#loaded.config.shutdown;
    this.#lifecycle.moveTo('draining');
    let report: StopReport = { drained: true, abandoned: 0 };
    const stop = await stopWithin({ clock: this.#clock, timeoutMs: drainTimeoutMs, controller: this.#stop }, async () => {
      report = (await this.#stream?.drain(drainTimeoutMs)) ?? report;
      this.#logger.info(report, report.drained ? 'drained' : 'drain timed out; abandoned events are re-read after restart');
      await this.#stopSampling();
      await this.#closeAll();
    });
    if (stop.forced) {
      // A stop that ran out of time is still no crash: what was in flight did not kill the process.
      void this.#guard?.close();
      report = { drained: false, abandoned: this.#stream?.inflight ?? 0 };
      this.#logger.warn({ ...report, drainTimeoutMs },
        'forced stop: drain, commit and close did not finish in time; what was not committed is re-read after restart');
    }
    this.#lifecycle.moveTo('stopped');
    return report;
  }

  async #closeAll(): Promise<void> {
    const steps: Array<[string, (() => Promise<void>) | undefined]> = [
      ['source', this.#source && (() => this.#source!.close())],
      ['sink', this.#sink && (() => this.#sink!.close())],
      ['engine', this.#engine && (() => this.#engine!.close())],
      ['metrics server', this.#server && (() => this.#server!.close())],
      ['admin endpoint', this.#admin && (() => this.#admin!.close())],
      // Last: a crash while closing the rest still counts as one at the next start.
      ['crash journal', this.#guard && (() => this.#guard!.close())],
    ];
    for (const [what, close] of steps) {
      try {
        await close?.();
      } catch (err) {
        this.#logger.warn({ err: asVerdictError(err).toJSON(), what }, 'close failed');
      }
    }
  }

  /** Fails (from any state but stopped) and closes what was opened, under the same forced-stop timer. */
  async #fail(err: unknown): Promise<void> {
    if (!this.#lifecycle.moveTo('failed')) return;
    this.#logger.error({ err: asVerdictError(err).toJSON() }, 'daemon failed');
    const timeoutMs = this.#loaded.config.shutdown.drainTimeoutMs;
    this.#stopping ??= stopWithin({ clock: this.#clock, timeoutMs, controller: this.#stop }, async () => {
      await this.#stopSampling();
      await this.#closeAll();
    }).then((stop) => {
      if (stop.forced) {
        void this.#guard?.close();
        this.#logger.warn({ drainTimeoutMs: timeoutMs }, 'forced stop: closing the failed daemon did not finish in time');
      }
      return { drained: false, abandoned: this.#stream?.inflight ?? 0 };
    });
    await this.#stopping;
  }
}
