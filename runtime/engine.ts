/**
 * The engine: one compiled pipeline with its model actors, join, router and decision actor, shared by the
 * stream path (`stream`) and the programmatic API (`evaluate`, `executeModel`), so both run the same code.
 */
import { dirname } from 'node:path';
import type { SchedulerLike } from 'rxjs';
import { preciseScheduler } from '../core/clock.js';
import { DecisionActor, type Decision } from '../pipeline/decide/decision-actor.js';
import { ShadowDecisions } from '../pipeline/decide/shadow-decisions.js';
import type { CompiledPipeline } from '../config/compiled.js';
import { compilePipeline } from '../config/compile-pipeline.js';
import { celLimitsOf } from '../config/rules.js';
import { loadPipelineFile } from '../config/load.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { ModelRegistry } from '../models/registry.js';
import type { ModelRunner } from '../models/runner.js';
import type { ResolvedModel, RowInputs, RowOutputs } from '../models/types.js';
import { CommitTracker, type CommitOffset } from '../streams/runtime/commit-tracker.js';
import type { StreamOptionsInput } from '../config/stream-options.js';
import { PartitionedStream } from '../streams/runtime/partitioned-stream.js';
import { createIngestor, type Ingestor } from '../pipeline/ingest/ingest.js';
import { DeadlineJoin } from '../pipeline/join/deadline-join.js';
import type { EncodedOutcome, Outcome } from '../pipeline/outcome.js';
import { createBlockProcessor, encodeBlock, type BlockProcessor } from '../pipeline/stages.js';
import { compiledBindings, type ModelBindings } from '../pipeline/route/bindings.js';
import { EventRouter, type StepExecutor } from '../pipeline/route/event-router.js';
import { NO_HEADERS } from '../pipeline/headers.js';
import type { Sink, Source } from '../streams/types.js';
import type { InboundRecord } from '../pipeline/record.js';
import type { StateRead } from '../pipeline/state/types.js';
import type { ModelActor } from '../actors/model-actor.js';
import { ActorCache } from './actor-cache.js';
import type { StreamGuard } from './crash-guard.js';
import { BlockPool } from './block-pool.js';
import { LiveModels, type FollowMode } from './live-models.js';
import type { ShadowRecord } from './shadow-topic.js';
import { ShadowTopicOutput } from './shadow-topic-output.js';
import { CallState, keyedStateFor } from './keyed-state.js';
import { stepExecutor } from './step-executor.js';
import { placeInference } from './workers/placement.js';

/** How an engine is built. Every field is optional. */
export interface EngineOptions {
  /** The clock for join deadlines, step timeouts, batching delays and latencies (core/clock.ts). Default: the production clock. */
  readonly scheduler?: SchedulerLike;
  /** Where the engine counts. Default: a fresh `createMetrics()` registry (no process metrics). */
  readonly metrics?: Metrics;
  /** Default: silent. The engine logs under `component: engine` with `pipeline: <name>`. */
  readonly logger?: Logger;
  /** Where this thread's batches run. Default: as the pipeline's placement says (`placeInference`); the caller owns a runner it gives. */
  readonly runner?: ModelRunner;
  /** Model actors shared with other engines; the engine makes (and closes) its own when absent. */
  readonly actors?: ActorCache;
  /** The registry `executeModel` resolves ids in. Default: the pipeline's (`models.registry`), opened lazily. */
  readonly registry?: ModelRegistry;
  /**
   * The block workers' task file (runtime.mode: blocks with workers); the compiled `block-worker.js` unless
   * given. For tests that wrap it (a thread that crashes on a marked record); not settable from YAML.
   */
  readonly blockTaskFile?: string | URL;
  /**
   * How the engine follows the registry's aliases (`engine.models`, runtime/live-models.ts): `timer`
   * (default) checks every `models.aliasPollMs`; `on-use` checks when a block or event starts, at most that
   * often, so no timer keeps the process alive (the programmatic API); `off` never (a block worker, which
   * the main thread tells).
   */
  readonly followAliases?: FollowMode;
  /**
   * With `output.shadowTopic`: keep this thread's shadow-topic records for another thread to take
   * (`takeShadowRecords`) even with no stream running here (a block worker). Default false: the records are
   * kept only while a stream of this engine runs, which writes them.
   */
  readonly keepShadowRecords?: boolean;
  /**
   * Epoch milliseconds, for `state.maxAhead` on `evaluate` calls (an API event has no record timestamp:
   * the call's time stands for it). Default `Date.now`.
   */
  readonly wallClock?: () => number;
  /** The bound of this thread's shadow-topic buffer (runtime/shadow-topic.ts), for tests; not settable from YAML. */
  readonly shadowTopicBuffer?: number;
}

/** One event's result from `Engine.evaluate` / `Verdict.executePipeline`. */
export interface PipelineResult {
  /** A `DecisionOutcome`, or a `DeadLetterOutcome` (bad input) carrying the typed error. */
  readonly outcome: Outcome;
  /** Each ok step's outputs, by step id. */
  readonly outputs: Readonly<Record<string, RowOutputs>>;
  /** The decision; null when the outcome is a dead letter. */
  readonly decision: Decision | null;
}

/**
 * One compiled pipeline with its model actors, join, router and decider; build it with `Engine.create` or
 * `Engine.fromCompiled`, release it with `close()`. The stages an event goes through are listed in
 * pipeline/stages.ts.
 */
export class Engine {
  /** The compiled pipeline this engine runs. */
  readonly pipeline: CompiledPipeline;
  /** `EngineOptions.metrics`, or the engine's own. */
  readonly metrics: Metrics;
  /** Where `executeModel` resolves model ids. */
  readonly registry: ModelRegistry;
  /** The engine's component logger. */
  readonly logger: Logger;
  /** `EngineOptions.scheduler`, or the production clock. */
  readonly scheduler: SchedulerLike;
  readonly #actors: ActorCache;
  readonly #ownsActors: boolean;
  readonly #join: DeadlineJoin;
  /** One executor per step and model version (`<step index>|<ref>`), made on first use, with the actor it holds. */
  readonly #executors = new Map<string, { readonly executor: StepExecutor & { close(): void }; readonly actor: ModelActor }>();
  /**
   * The model versions new blocks run, following the registry's aliases (runtime/live-models.ts):
   * `status()`, `refresh()`, and the bindings each block is stamped with.
   */
  readonly models: LiveModels;
  readonly #process: BlockProcessor;
  /** Shadow decisions compared with the ones made; undefined when no step has a shadow. */
  readonly #shadows: ShadowDecisions | undefined;
  /** This thread's shadow topic (runtime/shadow-topic-output.ts), with `output.shadowTopic` and a shadow step; else undefined. */
  readonly #shadowTopic: ShadowTopicOutput | undefined;
  /** The inference workers' metrics when this engine placed its batches in a pool. */
  readonly #inferenceMetrics: () => Promise<unknown[]>;
  readonly #blockTaskFile: string | URL | undefined;
  /** This engine's ingestion: the state stage reads events through it before the core does. */
  readonly #ingestor: Ingestor;
  /** Per-key state of `evaluate` calls (in memory); undefined without `state` in the pipeline. */
  readonly #callState: CallState | undefined;
  readonly #wallClock: () => number;
  #blocks: BlockPool | undefined;
  #sequence = 0;

  private constructor(pipeline: CompiledPipeline, registry: ModelRegistry, options: EngineOptions) {
    this.pipeline = pipeline;
    this.#blockTaskFile = options.blockTaskFile;
    this.registry = registry;
    this.scheduler = options.scheduler ?? preciseScheduler;
    this.metrics = options.metrics ?? createMetrics();
    this.logger = componentLogger(options.logger ?? silentLogger, 'engine', { pipeline: pipeline.name });
    this.#ownsActors = options.actors === undefined;
    if (options.actors !== undefined) {
      this.#actors = options.actors;
      this.#inferenceMetrics = () => Promise.resolve([]);
    } else {
      // A runner given is the caller's (placed by them, closed by them); otherwise the placement decides.
      const placed = options.runner === undefined
        ? placeInference(pipeline.placement, { metrics: this.metrics, logger: this.logger, maxModelBytes: pipeline.maxModelBytes })
        : { runner: options.runner, workerMetrics: () => Promise.resolve([]) };
      this.#inferenceMetrics = placed.workerMetrics;
      this.#actors = new ActorCache({
        runner: placed.runner,
        ownsRunner: options.runner === undefined,
        scheduler: this.scheduler,
        metrics: this.metrics,
        logger: this.logger,
      });
    }

    this.#join = new DeadlineJoin({
      pipeline: pipeline.name,
      steps: pipeline.steps.map((s) => s.id),
      mode: pipeline.join.mode,
      deadlineMs: pipeline.join.deadlineMs,
      scheduler: this.scheduler,
      metrics: this.metrics,
    });
    const initial = compiledBindings(pipeline);
    // Executors for the compiled versions now (canaries and shadows too), so their actors start (and warm
    // up) with the engine.
    for (const [i, step] of initial.steps.entries()) {
      for (const model of [step.primary, step.canary?.model, step.shadow]) if (model != null) this.#executorFor(i, model);
    }
    this.models = new LiveModels({
      pipeline,
      initial,
      registry,
      threads: { prepare: (i, model) => this.#prepareEverywhere(i, model), retire: (i, model) => this.#retireEverywhere(i, model) },
      scheduler: this.scheduler,
      metrics: this.metrics,
      logger: this.logger,
      ...(options.followAliases === undefined ? {} : { follow: options.followAliases }),
    });
    const router = new EventRouter(pipeline, { executorFor: (i, model) => this.#executorFor(i, model) }, this.#join, this.scheduler);
    const decider = new DecisionActor({
      pipeline: pipeline.name, decision: pipeline.decision, metrics: this.metrics, logger: this.logger, clock: this.scheduler,
      limits: celLimitsOf(pipeline.limits, pipeline.input.limits),
    });
    const shadowTopic = ShadowTopicOutput.of({
      pipeline, clock: this.scheduler, metrics: this.metrics, logger: this.logger,
      keep: options.keepShadowRecords === true, settled: () => this.shadowsSettled(),
      ...(options.shadowTopicBuffer === undefined ? {} : { bound: options.shadowTopicBuffer }),
    });
    this.#shadowTopic = shadowTopic;
    this.#shadows = pipeline.steps.some((s) => s.shadow !== null)
      ? new ShadowDecisions({
        pipeline: pipeline.name, steps: pipeline.steps.map((s) => s.id), decider, metrics: this.metrics,
        ...(shadowTopic === undefined ? {} : { onComparison: (c) => shadowTopic.record(c) }),
      })
      : undefined;
    this.#ingestor = createIngestor(pipeline, this.scheduler);
    this.#wallClock = options.wallClock ?? Date.now;
    this.#callState = pipeline.state === null ? undefined : new CallState(pipeline.state, (raw, key) => this.#ingestor.identifyEvent(raw, key));
    this.#process = createBlockProcessor({
      pipeline: pipeline.name,
      ingestor: this.#ingestor,
      router,
      decider,
      scheduler: this.scheduler,
      metrics: this.metrics,
      ...(this.#shadows === undefined ? {} : { shadows: this.#shadows }),
    });
  }

  /**
   * Compiles a pipeline (a YAML file path, or a parsed `PipelineFile`) against its registry and starts its
   * model actors. A relative `models.registry` resolves against `options.baseDir`, default the file's
   * directory (the working directory for a parsed file). Rejects with `ConfigError` (CONFIG_INVALID: an
   * unreadable or invalid file, an unknown model, a rule that does not compile) or a model's load error
   * (MODEL_NOT_FOUND, MODEL_INTEGRITY, …).
   */
  static async create(source: string | PipelineFile, options: EngineOptions & { baseDir?: string } = {}): Promise<Engine> {
    const file = typeof source === 'string' ? await loadPipelineFile(source) : source;
    const baseDir = options.baseDir ?? (typeof source === 'string' ? dirname(source) : process.cwd());
    const registry = options.registry ?? new ModelRegistry(resolveRegistry(file, baseDir), options.logger ?? silentLogger, { maxModelBytes: file.models.maxModelBytes });
    const pipeline = await compilePipeline(file, registry, { baseDir });
    return Engine.fromCompiled(pipeline, { ...options, registry });
  }

  /**
   * An engine for a pipeline compiled already (plain data: what block workers receive). Reads no pipeline
   * file and resolves no model id; compiles the CEL of the steps and rules once, and starts (and warms) the
   * model actors. Rejects with the typed error of a model that cannot load. The registry (for
   * `executeModel`) defaults to the pipeline's `registryRoot`, opened lazily.
   */
  static async fromCompiled(pipeline: CompiledPipeline, options: EngineOptions = {}): Promise<Engine> {
    const registry = options.registry ?? new ModelRegistry(pipeline.registryRoot, options.logger ?? silentLogger, { maxModelBytes: pipeline.maxModelBytes });
    const engine = new Engine(pipeline, registry, options);
    await engine.#actors.ready();
    engine.models.start();
    return engine;
  }

  /**
   * The executor of step `i` (pipeline order) on a model version, made on first use: the step's time
   * bound over the version's model actor (shared through the actor cache). The join deadline already
   * bounds every step: a step timeout only settles the call itself when tighter. Either bound withdraws
   * the call's rows that have not run yet (see step-executor.ts).
   */
  #executorFor(i: number, model: ResolvedModel): StepExecutor {
    return this.#executorEntry(i, model).executor;
  }

  #executorEntry(i: number, model: ResolvedModel): { readonly executor: StepExecutor & { close(): void }; readonly actor: ModelActor } {
    const key = `${i}|${model.ref}`;
    let entry = this.#executors.get(key);
    if (entry === undefined) {
      const step = this.pipeline.steps[i]!;
      const { deadlineMs } = this.pipeline.join;
      const ownTimeout = step.timeoutMs < deadlineMs;
      const actor = this.#actors.acquire(model, step.batching, step.circuitBreaker);
      entry = { executor: stepExecutor(actor, this.scheduler, ownTimeout ? step.timeoutMs : deadlineMs, ownTimeout), actor };
      this.#executors.set(key, entry);
    }
    return entry;
  }

  /**
   * Loads and warms a version for step `i` on this thread: its executor and model actor, its session in
   * every thread of this engine's runner (an inference pool). Rejects with the typed load error. Used by the
   * live models (and by a block worker when the main thread says so).
   */
  async prepareModel(i: number, model: ResolvedModel): Promise<void> {
    const { actor } = this.#executorEntry(i, model);
    await actor.start();
    await this.#actors.runner.load?.({ modelPath: model.path, modelSha256: model.manifest.sha256 });
  }

  /**
   * Unloads step `i`'s version `ref` on this thread: drops its executor and, when no other step or engine
   * holds it, stops its actor and releases its sessions. A no-op for a version not loaded for the step.
   */
  async retireModel(i: number, ref: string): Promise<void> {
    const key = `${i}|${ref}`;
    const entry = this.#executors.get(key);
    if (entry === undefined) return;
    this.#executors.delete(key);
    entry.executor.close();
    await this.#actors.release(ref);
  }

  /** Every thread that runs step `i`: this one (its actors and inference workers) and every block worker. */
  async #prepareEverywhere(i: number, model: ResolvedModel): Promise<void> {
    await Promise.all([this.prepareModel(i, model), this.#blocks?.prepare(i, model)]);
  }

  async #retireEverywhere(i: number, model: ResolvedModel): Promise<void> {
    await Promise.all([this.retireModel(i, model.ref), this.#blocks?.retire(i, model.ref)]);
  }

  /** The model versions new blocks run now (`models.bindings`). */
  get bindings(): ModelBindings {
    return this.models.bindings;
  }

  /**
   * A block of records through the whole core on this thread, each outcome encoded for the sink.
   * `bindings`: the model versions it runs; default the engine's current ones (held until the block ends).
   * `states`: one StateRead per record, by position, from the state stage (required with `state` in the
   * pipeline: see `BlockInput.states`); a StateRead error dead-letters its record with that code.
   */
  async processBlock(records: readonly InboundRecord[], bindings?: ModelBindings, states?: readonly (StateRead | undefined)[]): Promise<EncodedOutcome[]> {
    const lease = bindings === undefined ? this.models.lease() : undefined;
    try {
      const outcomes = await this.#process(records, { bindings: bindings ?? lease!.bindings, states });
      return encodeBlock(outcomes, this.pipeline.output, this.pipeline.name);
    } finally {
      lease?.release();
    }
  }

  /**
   * One event object through the pipeline: each step's outputs and the decision. Bad input (schema,
   * features) resolves as a dead-letter outcome with `decision: null`, never a rejection; a failing model is
   * decided by the incomplete policy, as in the stream.
   */
  async evaluate(event: Record<string, unknown>): Promise<PipelineResult> {
    const record: InboundRecord = {
      topic: this.pipeline.input.topic, partition: 0, offset: this.#sequence++,
      key: null, value: null, headers: NO_HEADERS, timestamp: this.scheduler.now(),
    };
    // Applied now, in call order, before anything awaits: the state sees calls in the order they were made.
    const states = this.#callState === undefined ? undefined : [this.#callState.apply(event, record.offset, this.#wallClock())];
    const lease = this.models.lease();
    const [outcome] = await this.#process([record], { events: [event], bindings: lease.bindings, ...(states === undefined ? {} : { states }) })
      .finally(() => lease.release());
    if (outcome === undefined) throw new Error('the block processor returned no outcome');
    if (outcome.kind === 'dead-letter') return { outcome, outputs: {}, decision: null };
    return { outcome, outputs: outcome.decision.outputs, decision: outcome.decision };
  }

  /**
   * Runs one model on one row (input name → values), through the same actor (and micro-batches) the pipeline
   * uses. No timeout of its own (`Verdict.executeModel` adds one). Rejects with MODEL_NOT_FOUND,
   * MODEL_INPUT_INVALID, MODEL_EXECUTION_FAILED, …
   */
  async executeModel(modelId: string, input: RowInputs): Promise<RowOutputs> {
    const model = await this.registry.resolve(modelId);
    return this.#actors.actorFor(model).infer(input);
  }

  /**
   * Starts the block workers (each builds and warms its own engine) before a stream needs them, so the
   * first blocks do not wait for model loading. A no-op unless the pipeline runs blocks in workers.
   */
  async prepareStream(): Promise<void> {
    if (this.pipeline.placement.blocks === 'workers') await this.#blockPool().ready();
  }

  /**
   * Runs the pipeline between a source and a sink (e.g. `KafkaSource`/`KafkaSink`, or the embedded log's),
   * started at once, until drained (`drain(timeoutMs)` on the result). Each admitted block runs where the
   * placement says: in a block worker (`placement.blocks: workers`) or on this thread. `options.stream`: the
   * stream's bounds (config/stream-options.ts, where the defaults live); `onDelivered`: called once per
   * outcome the sink acknowledged; `guard`: wraps each block's processing (the daemon's crash guard,
   * runtime/crash-guard.ts) and hears of every commit.
   */
  stream(source: Source, sink: Sink, options: { stream?: StreamOptionsInput; onDelivered?: (d: EncodedOutcome, record: InboundRecord) => void; guard?: StreamGuard } = {}): PartitionedStream {
    const blocks = this.pipeline.placement.blocks === 'workers' ? this.#blockPool() : undefined;
    // The shadow topic's writer (one stream at a time): the block workers' records, or this thread's own.
    // Per-key state (runtime/keyed-state.ts) on the source's changelog store, when the pipeline declares it.
    const state = keyedStateFor(this.pipeline, source, {
      readEvent: (record) => this.#ingestor.readEvent(record), clock: this.scheduler, logger: this.logger, metrics: this.metrics,
    });
    const writer = this.#shadowTopic?.openWriter(sink, blocks === undefined ? undefined : (settle, timeoutMs) => blocks.collectShadowRecords(settle, timeoutMs));
    const stream = new PartitionedStream({
      source,
      sink,
      // Each block is stamped with the bindings current when it is handed to processing, and holds them
      // until its outcomes are in (old versions are unloaded once no block holds them).
      process: (records, states) => {
        const lease = this.models.lease();
        const run = (r: readonly InboundRecord[], s: readonly (StateRead | undefined)[] | undefined): Promise<EncodedOutcome[]> =>
          (blocks === undefined ? this.processBlock(r, lease.bindings, s) : blocks.process(r, lease.bindings, s));
        // The daemon's crash guard (runtime/crash-guard.ts) journals the block first and isolates suspect records.
        const { guard } = options;
        return (guard === undefined ? run(records, states) : guard.process(records, states, lease.bindings, run)).finally(() => lease.release());
      },
      ...(state === undefined ? {} : { state }),
      tracker: new CommitTracker(),
      pipeline: this.pipeline.name,
      deadLetter: { topic: this.pipeline.output.deadLetter, pipeline: this.pipeline.name },
      scheduler: this.scheduler,
      logger: this.logger,
      metrics: this.metrics,
      ...(options.stream === undefined ? {} : { options: options.stream }),
      ...(options.onDelivered === undefined ? {} : { onDelivered: options.onDelivered }),
      ...(writer === undefined ? {} : { afterDrain: (timeLeftMs: number) => writer.flush(timeLeftMs) }),
      ...(options.guard === undefined ? {} : { onCommitted: (offsets: readonly CommitOffset[]) => options.guard?.committed(offsets), delivery: options.guard }),
    });
    stream.start();
    return stream;
  }

  /**
   * Takes this thread's shadow-topic records (a block worker's answer to the main thread's collection);
   * `settle`: first waits for the comparisons in progress. Empty without a shadow topic.
   */
  takeShadowRecords(settle: boolean): Promise<ShadowRecord[]> {
    return this.#shadowTopic?.take(settle) ?? Promise.resolve([]);
  }

  /** Every worker's metrics (block and inference workers, prom-client JSON), to merge with this engine's own at scrape time. */
  async workerMetrics(): Promise<unknown[]> {
    const [blocks, inference] = await Promise.all([this.#blocks?.collectMetrics() ?? Promise.resolve([]), this.#inferenceMetrics()]);
    return [...blocks, ...inference];
  }

  #blockPool(): BlockPool {
    this.#blocks ??= new BlockPool({
      pipeline: this.pipeline,
      logLevel: this.logger.isLevelEnabled('info') ? this.logger.level : null,
      logger: this.logger,
      metrics: this.metrics,
      ...(this.#blockTaskFile === undefined ? {} : { taskFile: this.#blockTaskFile }),
      clock: this.scheduler,
    });
    return this.#blocks;
  }

  /**
   * Resolves once every shadow comparison this thread has started is counted in the shadow metrics
   * (immediately without a shadow step). Blocks run in block workers compare there, not here.
   */
  shadowsSettled(): Promise<void> {
    return this.#shadows?.settled() ?? Promise.resolve();
  }

  /**
   * Closes open joins (their events settle as timeouts) and, if the engine made its actors, stops them
   * (their queued rows run, shadow rows included), then waits for the shadow comparisons in progress.
   */
  async close(): Promise<void> {
    this.#shadowTopic?.close();
    await this.models.close();
    await this.#blocks?.close();
    this.#join.close();
    for (const { executor } of this.#executors.values()) executor.close();
    if (this.#ownsActors) {
      await this.#actors.close();
      await this.shadowsSettled();
    }
  }
}

function resolveRegistry(file: PipelineFile, baseDir: string): string {
  return file.models.registry.startsWith('/') ? file.models.registry : `${baseDir}/${file.models.registry}`;
}
