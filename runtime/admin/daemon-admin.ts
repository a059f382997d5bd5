/**
 * The daemon as the admin API sees it (`AdminTarget`): read from the daemon's parts as they are at each
 * request, since the engine and the stream appear only part-way through start-up.
 */
import type { LoadedDaemonConfig } from '../../config/load-daemon.js';
import { redactSecrets } from '../../config/redact.js';
import { AdminConflictError } from '../../core/errors.js';
import type { LifecycleState } from '../../core/lifecycle.js';
import type { Metrics } from '../../core/metrics.js';
import type { FetchWait } from '../../streams/kafka/fetch-wait.js';
import type { KafkaPartitionLag } from '../../streams/kafka/kafka-source.js';
import type { PartitionedStream } from '../../streams/runtime/partitioned-stream.js';
import type { CrashGuard } from '../crash-guard.js';
import type { Engine } from '../engine.js';
import type { AdminConfig, AdminConsumption, AdminModelChange, AdminModels, AdminStatus, AdminTarget, VersionsInUse } from './admin-target.js';
import { breakerStates } from './breaker-states.js';
import { modelsInUse, promoteModel, rollbackModel, type ModelActionDeps } from './model-actions.js';

/** The daemon's parts, read at each request. */
export interface DaemonView {
  readonly loaded: LoadedDaemonConfig;
  readonly metrics: Metrics;
  lifecycle(): LifecycleState;
  engine(): Engine | undefined;
  stream(): PartitionedStream | undefined;
  /** The latest consumer lag sample and when it was taken (`now()` then), if one was. */
  lag(): { readonly at: number; readonly partitions: readonly KafkaPartitionLag[] } | undefined;
  /** The daemon's clock, ms (not wall-clock time: only differences mean something). */
  now(): number;
  /** The crash guard, once the stream is set up with a crash journal. */
  crashGuard?(): CrashGuard | undefined;
  /** The consumer's fetch wait, once chosen (configured, or asked of the broker). */
  fetchWait?(): FetchWait | undefined;
}

const tpKey = (tp: { topic: string; partition: number }): string => `${tp.topic}\u0000${tp.partition}`;

/** The versions each step uses now, by role, with refusals (`engine.models.status()`). */
export function versionsInUse(engine: Engine | undefined): VersionsInUse {
  return engine === undefined ? { steps: [] } : engine.models.status();
}

export class DaemonAdmin implements AdminTarget {
  readonly #view: DaemonView;

  constructor(view: DaemonView) {
    this.#view = view;
  }

  async status(): Promise<AdminStatus> {
    const engine = this.#view.engine();
    const stream = this.#view.stream();
    const sample = this.#view.lag();
    const lag = new Map((sample?.partitions ?? []).map((l) => [tpKey(l), l.lag]));
    const halted = new Map((stream?.halted() ?? []).map((h) => [tpKey(h), h.offset]));
    const guard = this.#view.crashGuard?.();
    const fetchWait = this.#view.fetchWait?.();
    const registries = [await this.#view.metrics.registry.getMetricsAsJSON(), ...(await engine?.workerMetrics() ?? [])];
    return {
      lifecycle: this.#view.lifecycle(),
      paused: stream?.paused ?? false,
      assignment: (stream?.assigned() ?? []).map((tp) => ({
        topic: tp.topic,
        partition: tp.partition,
        lag: lag.get(tpKey(tp)) ?? null,
        throttled: stream?.throttled(tp) ?? false,
        haltedAt: halted.get(tpKey(tp)) ?? null,
      })),
      lagAgeMs: sample === undefined ? null : Math.max(0, Math.round(this.#view.now() - sample.at)),
      versions: versionsInUse(engine),
      breakers: breakerStates(registries),
      ...(guard === undefined ? {} : { crashJournal: guard.status() }),
      ...(fetchWait === undefined ? {} : { fetchWait }),
    };
  }

  async models(): Promise<AdminModels> {
    const engine = this.#running('list models');
    return modelsInUse(engine.registry, versionsInUse(engine));
  }

  async promote(name: string, version: number, alias: string | undefined): Promise<AdminModelChange> {
    return promoteModel(this.#modelDeps(), name, version, alias);
  }

  async rollback(name: string, alias: string | undefined): Promise<AdminModelChange> {
    return rollbackModel(this.#modelDeps(), name, alias);
  }

  pause(): AdminConsumption {
    const stream = this.#stream('pause');
    const changed = stream.pause();
    return { paused: true, changed, partitions: stream.assigned().length };
  }

  resume(): AdminConsumption {
    const stream = this.#stream('resume');
    const changed = stream.resume();
    return { paused: false, changed, partitions: stream.assigned().length };
  }

  config(): AdminConfig {
    const { config, pipelinePath, overridden } = this.#view.loaded;
    const { value, paths } = redactSecrets(config);
    return { pipeline: pipelinePath, config: value, redacted: paths, overridden };
  }

  #modelDeps(): ModelActionDeps {
    const engine = this.#running('change a model alias');
    // A promote or rollback swaps live, unless the versions are fixed (models.aliasPollMs 0).
    return { registry: engine.registry, refresh: engine.models.follows ? () => engine.models.refresh() : undefined };
  }

  /** The engine, once the pipeline is loaded; ADMIN_CONFLICT before. */
  #running(what: string): Engine {
    const engine = this.#view.engine();
    if (engine === undefined) throw new AdminConflictError(`cannot ${what}: the daemon is ${this.#view.lifecycle()} and has no pipeline loaded`);
    return engine;
  }

  /** The stream while the daemon runs; ADMIN_CONFLICT otherwise (starting, draining, stopped, failed). */
  #stream(what: string): PartitionedStream {
    const stream = this.#view.stream();
    const state = this.#view.lifecycle();
    if (stream === undefined || state !== 'running') throw new AdminConflictError(`cannot ${what} consumption: the daemon is ${state}`, { details: { state } });
    return stream;
  }
}
