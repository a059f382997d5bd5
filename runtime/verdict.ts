/**
 * The programmatic API. A Verdict instance owns one actor pool (so every call of a model version batches
 * with every other) and an engine per pipeline; `executeModel` and `executePipeline` run through the same
 * actors, join and decision code as the stream path. `executeModel` needs only a registry directory: it
 * never compiles a pipeline.
 */
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import type { SchedulerLike } from 'rxjs';
import { z } from 'zod';
import { preciseScheduler } from '../core/clock.js';
import { placementOf, type Placement } from '../config/placement.js';
import { runtimeSchema, type PipelineFile } from '../config/pipeline-schema.js';
import { loadPipelineFile } from '../config/load.js';
import { ConfigError, ModelInputError, ModelTimeoutError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import { parseOptions } from '../core/options.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { defaultPipelinePath } from '../core/paths.js';
import { ModelRegistry } from '../models/registry.js';
import type { ModelRunner } from '../models/runner.js';
import type { RowInputs, RowOutputs, RowResults } from '../models/types.js';
import { ActorCache } from './actor-cache.js';
import { Engine, type PipelineResult } from './engine.js';
import { placeInference } from './workers/placement.js';

/**
 * How long an `executeModel` call may take before it rejects with `MODEL_TIMEOUT`, unless told otherwise.
 * A named constant rather than a schema default: it is public, and `timeoutMs` (Infinity allowed) is
 * checked by `timeoutOrError`, whose error names the field.
 */
export const DEFAULT_MODEL_TIMEOUT_MS = 5_000;

/** `VerdictOptions` checked at construction. `workers` has no default: absent, the pipeline's placement decides. */
const verdictOptionsSchema = z.object({
  workers: z.number().int().nonnegative().optional(),
});

/**
 * `new Verdict(options)`; every field optional. A bad `workers` or `timeoutMs` throws `ConfigError`
 * (CONFIG_INVALID) from the constructor; the files are read on first use.
 */
export interface VerdictOptions {
  /**
   * A model registry directory (as `verdict models register --registry <dir>` writes), for `executeModel`.
   * Relative paths start at the working directory. Default: the registry the `pipeline` file names (for the
   * default pipeline, the sample registry `models/registry`). `executePipeline` always uses its pipeline's.
   */
  readonly registry?: string;
  /** The pipeline file whose schema, features, steps and rules `executePipeline` uses. Default: the card-risk sample. */
  readonly pipeline?: string;
  /**
   * Inference worker threads, overriding the placement: 0 runs models on the calling thread, n > 0 in a pool
   * of n inference workers. Default: the placement of the pipeline file's `runtime` section (see
   * `placement()`). Ignored when `runner` is given.
   */
  readonly workers?: number;
  /** Where batches run, instead of the default (see `workers`). The caller owns it: `close()` does not close it. */
  readonly runner?: ModelRunner;
  /** The default `timeoutMs` of `executeModel`, in milliseconds: a positive number, or Infinity for none. Default 5000. */
  readonly timeoutMs?: number;
  /** The clock and timers (micro-batch delays, timeouts). Default: real time. */
  readonly scheduler?: SchedulerLike;
  /** Where counters and histograms go. Default: a fresh registry, readable as `verdict.metrics`. */
  readonly metrics?: Metrics;
  /** A pino logger. Default: silent. */
  readonly logger?: Logger;
}

/** Per-call options of `Verdict.executeModel` (and the `executeModel` function). */
export interface ExecuteModelOptions {
  /**
   * Milliseconds the whole call may take (resolving the model, loading it on first use, queueing and
   * inference) before it rejects with `ModelTimeoutError` (`MODEL_TIMEOUT`). Rows not yet sent to the runner
   * are then withdrawn. Default: the instance's `timeoutMs` (5000).
   */
  readonly timeoutMs?: number;
}

/**
 * Runs models and pipelines from code.
 *
 *   const verdict = new Verdict({ registry: './registry' });
 *   await verdict.executeModel('fraud_gbt@production', { features });          // one row → RowOutputs
 *   await verdict.executeModel('fraud_gbt', [{ features: a }, { features: b }]); // a batch → RowResults
 *   await verdict.executePipeline('card-risk', transaction);                    // → PipelineResult
 *   await verdict.close();
 *
 * Models load lazily, on the first call that needs them, and stay loaded until `close()`.
 */
export class Verdict {
  /** The instance's metrics (prom-client), e.g. `await verdict.metrics.registry.metrics()`. */
  readonly metrics: Metrics;
  readonly #pipelinePath: string;
  readonly #registryPath: string | undefined;
  readonly #timeoutMs: number;
  readonly #options: VerdictOptions;
  readonly #workers: number | undefined;
  #actors: Promise<ActorCache> | undefined;
  /** The inference workers' metrics, once batches are placed in a pool. */
  #workerMetrics: () => Promise<unknown[]> = () => Promise.resolve([]);
  readonly #scheduler: SchedulerLike;
  readonly #logger: Logger;
  readonly #engines = new Map<string, Promise<Engine>>();
  #base: Promise<PipelineFile> | undefined;
  #registry: Promise<ModelRegistry> | undefined;

  /** Starts nothing yet: worker threads and models start on first use. Throws `CONFIG_INVALID` for a bad `timeoutMs`. */
  constructor(options: VerdictOptions = {}) {
    this.#pipelinePath = resolve(options.pipeline ?? defaultPipelinePath);
    this.#registryPath = options.registry === undefined ? undefined : resolve(options.registry);
    const timeoutMs = timeoutOrError(options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS);
    if (timeoutMs instanceof ConfigError) throw timeoutMs;
    this.#timeoutMs = timeoutMs;
    this.#scheduler = options.scheduler ?? preciseScheduler;
    this.#logger = options.logger ?? silentLogger;
    this.metrics = options.metrics ?? createMetrics();
    this.#options = options;
    // Checked now (CONFIG_INVALID), though the placement it overrides is decided on first use.
    this.#workers = parseOptions(verdictOptionsSchema, { workers: options.workers }, 'Verdict options').workers;
  }

  /**
   * Where this instance runs its model batches, decided as the stream decides it (config/placement.ts),
   * from the pipeline file's `runtime` section, or, with `registry` given (no pipeline file is read), from
   * that section's defaults; `workers` overrides it. With `placement.inference === 'pooled'` batches run in
   * `placement.workers` inference workers, else on the calling thread: with `runtime.mode: blocks` the
   * stream's blocks run in block workers, but calls from code are single events or batches of one model,
   * which run on the calling thread as the engine's own actors do. Rejects with `CONFIG_INVALID` when the
   * pipeline file cannot be read.
   */
  async placement(): Promise<Placement> {
    const runtime = this.#registryPath !== undefined ? runtimeSchema.parse({}) : (await this.#pipelineFile()).runtime;
    const workers = this.#workers;
    return placementOf(workers === undefined ? runtime : { ...runtime, mode: 'inference', workers }, cpus().length);
  }

  /**
   * Runs one model version of the registry (see `VerdictOptions.registry`) through its model actor, so
   * concurrent calls of one version share micro-batches. `modelId` is `name` (its `production` alias, else its latest version),
   * `name@<version>` or `name@<alias>`.
   *
   * One row: `input` maps each model input's name to that row's values (the product of the input's non-batch
   * dimensions, e.g. a `Float32Array(16)` for `float32[N,16]`; numbers, bigints, booleans or strings are
   * converted exactly or refused). Resolves with the row's outputs (a scalar where a row has one value,
   * otherwise an array) or rejects with the row's typed error.
   *
   * A batch: `input` is an array of such rows. Resolves with one entry per row, in order: `outputs[i]` or
   * `errors[i]` is set. A bad row (`MODEL_INPUT_INVALID`, an unusable output, a failure bisected down to it)
   * fails only itself; the call rejects only when no row can run (below).
   *
   * Rejects with: `MODEL_NOT_FOUND` (no such model, version or alias), `MODEL_INTEGRITY` (the file does not
   * match its manifest), `MODEL_TIMEOUT` (`timeoutMs` passed: the whole call, not per row), `MODEL_INPUT_INVALID`
   * (`input` is neither a row nor an array of rows) and, for a single row, that row's error
   * (`MODEL_INPUT_INVALID`, `MODEL_OUTPUT_INVALID`, `MODEL_EXECUTION_FAILED`, `MODEL_SIGNATURE_MISMATCH`, …).
   */
  executeModel(modelId: string, rows: readonly RowInputs[], options?: ExecuteModelOptions): Promise<RowResults>;
  executeModel(modelId: string, row: RowInputs, options?: ExecuteModelOptions): Promise<RowOutputs>;
  executeModel(modelId: string, input: RowInputs | readonly RowInputs[], options: ExecuteModelOptions = {}): Promise<RowOutputs | RowResults> {
    const timeoutMs = options.timeoutMs === undefined ? this.#timeoutMs : timeoutOrError(options.timeoutMs);
    if (timeoutMs instanceof ConfigError) return Promise.reject(timeoutMs);
    return this.#withTimeout(modelId, timeoutMs, async (signal) => {
      if (typeof input !== 'object' || input === null) {
        throw new ModelInputError(`executeModel(${modelId}) takes a row (input name → values) or an array of rows, got ${input === null ? 'null' : typeof input}`);
      }
      const model = await (await this.#modelRegistry()).resolve(modelId);
      const actor = (await this.#actorCache()).actorFor(model);
      return isBatch(input) ? actor.inferBlock(input, signal) : actor.infer(input, signal);
    });
  }

  /**
   * Runs one event object through a pipeline: ingest (schema, features), every step, join, rules. `target` is
   * the configured pipeline's name, or a list of model ids that replace its steps: a model the pipeline
   * already uses keeps its step id (so its rules still apply), any other model becomes a step named after
   * the model, and rules about steps not in the list are left out.
   *
   * Bad input never rejects: an event the pipeline refuses resolves with `outcome.kind === 'dead-letter'`,
   * `decision: null`, `outputs: {}` and the typed error in `outcome.error` (`INPUT_SCHEMA_MISMATCH`,
   * `INPUT_FEATURE_FAILED`, `INPUT_INTEGER_OUT_OF_RANGE`, `INPUT_NUMBER_NOT_FINITE`, …): the same record the
   * stream sends to its dead-letter topic. A failing or late model is not bad input: the decision is made
   * by the pipeline's incomplete policy, as in the stream.
   *
   * Rejects only when the pipeline cannot be built, always with `CONFIG_INVALID`: a name other than the
   * configured pipeline's, an invalid pipeline file, a model id (listed or in a step) missing from the
   * registry or damaged (the message carries the cause's code, e.g. `steps[0].model: MODEL_NOT_FOUND`).
   */
  async executePipeline(target: string | readonly string[], input: Record<string, unknown>): Promise<PipelineResult> {
    return (await this.#engine(typeof target === 'string' ? target : [...target])).evaluate(input);
  }

  /**
   * The inference workers' metrics (prom-client JSON, one per worker thread), to merge with `metrics` at
   * scrape time as the daemon does; [] while batches run on the calling thread or before the first call.
   */
  workerMetrics(): Promise<unknown[]> {
    return this.#workerMetrics();
  }

  /** Drains every model actor (queued rows still run) and stops the worker threads this instance started. */
  async close(): Promise<void> {
    const engines = await Promise.allSettled(this.#engines.values());
    for (const e of engines) if (e.status === 'fulfilled') await e.value.close();
    const pool = await this.#actors?.catch(() => undefined);
    await pool?.close();
  }

  /** The actor pool every call shares, its runner placed on first use (see `placement()`). */
  #actorCache(): Promise<ActorCache> {
    if (this.#actors === undefined) {
      const pool = (async () => {
        let { runner } = this.#options;
        const owned = runner === undefined;
        if (runner === undefined) {
          const placed = placeInference(await this.placement(), { metrics: this.metrics, logger: this.#logger });
          runner = placed.runner;
          this.#workerMetrics = placed.workerMetrics;
        }
        return new ActorCache({ runner, ownsRunner: owned, scheduler: this.#scheduler, metrics: this.metrics, logger: this.#logger });
      })();
      // A failure (an unreadable pipeline file) is not cached: the next call tries again.
      pool.catch(() => { if (this.#actors === pool) this.#actors = undefined; });
      this.#actors = pool;
    }
    return this.#actors;
  }

  /** Runs `work`, rejecting with MODEL_TIMEOUT and aborting it (rows not yet dispatched are withdrawn) when late. */
  #withTimeout<T>(modelId: string, timeoutMs: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    return new Promise<T>((resolvePromise, reject) => {
      const timeout = (): void => {
        const error = new ModelTimeoutError(`${modelId} did not answer within ${timeoutMs} ms`, { details: { model: modelId, timeoutMs } });
        reject(error);
        controller.abort(error);
      };
      const started = this.#scheduler.now();
      // setTimeout treats Infinity as 1 ms: no timer at all is what Infinity means here.
      const timer = timeoutMs === Infinity ? undefined : this.#scheduler.schedule(timeout, timeoutMs);
      work(controller.signal).then((value) => {
        // Late by the clock is late: a model run on this thread blocks it, so the timer could not fire first.
        if (timer !== undefined && this.#scheduler.now() - started >= timeoutMs) timeout();
        else resolvePromise(value);
      }, reject).finally(() => timer?.unsubscribe());
    });
  }

  /** The registry `executeModel` reads: the one given, else the one the pipeline file names (read, not compiled). */
  #modelRegistry(): Promise<ModelRegistry> {
    if (this.#registry === undefined) {
      const registry = (async () => {
        if (this.#registryPath !== undefined) return new ModelRegistry(this.#registryPath, this.#logger);
        const base = await this.#pipelineFile();
        return new ModelRegistry(resolve(this.#pipelinePath, '..', base.models.registry), this.#logger);
      })();
      // A failure (an unreadable pipeline file) is not cached: the next call tries again.
      registry.catch(() => { if (this.#registry === registry) this.#registry = undefined; });
      this.#registry = registry;
    }
    return this.#registry;
  }

  #pipelineFile(): Promise<PipelineFile> {
    if (this.#base === undefined) {
      const base = loadPipelineFile(this.#pipelinePath);
      base.catch(() => { if (this.#base === base) this.#base = undefined; });
      this.#base = base;
    }
    return this.#base;
  }

  #engine(target: string | string[]): Promise<Engine> {
    const key = typeof target === 'string' ? `pipeline:${target}` : `models:${target.join(',')}`;
    let engine = this.#engines.get(key);
    if (engine === undefined) {
      engine = this.#build(target);
      this.#engines.set(key, engine);
      // A failed build is not cached: the next call tries again (the registry may have been fixed).
      engine.catch(() => this.#engines.delete(key));
    }
    return engine;
  }

  async #build(target: string | string[]): Promise<Engine> {
    const base = await this.#pipelineFile();
    if (typeof target === 'string' && target !== base.pipeline) {
      // The name selects configuration, not a model: asking for another pipeline is a configuration error.
      throw new ConfigError(`unknown pipeline "${target}" (configured: ${base.pipeline})`, {
        details: { pipeline: target, configured: base.pipeline },
      });
    }
    const file = Array.isArray(target) ? withModels(base, target) : base;
    return Engine.create(file, {
      baseDir: resolve(this.#pipelinePath, '..'),
      actors: await this.#actorCache(),
      scheduler: this.#scheduler,
      metrics: this.metrics,
      logger: this.#logger,
      registry: new ModelRegistry(resolve(this.#pipelinePath, '..', base.models.registry), this.#logger),
      // Aliases are checked as calls arrive (at most every models.aliasPollMs), so no timer holds the process.
      followAliases: 'on-use',
    });
  }
}

function isBatch(input: RowInputs | readonly RowInputs[]): input is readonly RowInputs[] {
  return Array.isArray(input);
}

/** A timeout as given, or the error saying why it is not one (returned, so a call can reject rather than throw). */
function timeoutOrError(value: number): number | ConfigError {
  if (typeof value === 'number' && !Number.isNaN(value) && value > 0) return value;
  return new ConfigError(`timeoutMs must be a positive number of milliseconds (or Infinity), got ${String(value)}`, {
    details: { field: 'timeoutMs' },
  });
}

/**
 * The base pipeline with its steps replaced by one independent step per model id. Rules (and the score)
 * that refer to a step not in the list are left out: they could never evaluate.
 */
function withModels(base: PipelineFile, modelIds: readonly string[]): PipelineFile {
  const nameOf = (id: string): string => id.split('@')[0] ?? id;
  const dense = Object.keys(base.input.features)[0] ?? 'dense';
  const steps = modelIds.map((model) => {
    const known = base.steps.find((s) => nameOf(s.model) === nameOf(model));
    const { when: _when, ...rest } = known ?? { id: nameOf(model), inputs: { features: `features.${dense}` } };
    return { ...rest, model };
  });
  const ids = new Set(steps.map((s) => s.id));
  const applies = (expr: string): boolean => [...expr.matchAll(/\bsteps\.([A-Za-z_][A-Za-z0-9_]*)/g)].every((m) => ids.has(m[1] ?? ''));
  const { decision } = base;
  const onIncomplete = decision.onIncomplete.policy === 'fallback'
    ? { ...decision.onIncomplete, rules: decision.onIncomplete.rules.filter((r) => applies(r.when)) }
    : decision.onIncomplete;
  return {
    ...base,
    pipeline: `${base.pipeline}+${modelIds.join('+')}`,
    steps,
    decision: {
      ...decision,
      rules: decision.rules.filter((r) => applies(r.when)),
      onIncomplete: onIncomplete.policy === 'fallback' && onIncomplete.rules.length === 0 ? { policy: 'fail-open' } : onIncomplete,
      ...(decision.score !== undefined && !applies(decision.score) ? { score: undefined } : {}),
    },
  };
}
