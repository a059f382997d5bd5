/**
 * The programmatic API. A Verdict instance owns one actor pool (so every call of a model version batches
 * with every other) and an engine per pipeline; `executeModel` and `executePipeline` run through the same
 * actors, join and decision code as the stream path.
 */
import { resolve } from 'node:path';
import type { SchedulerLike } from 'rxjs';
import { preciseScheduler } from '../core/clock.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { loadPipelineFile } from '../config/load.js';
import { ModelNotFoundError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { defaultPipelinePath } from '../core/paths.js';
import { InThreadRunner } from '../models/in-thread-runner.js';
import { PiscinaRunner } from '../models/piscina-runner.js';
import { ModelRegistry } from '../models/registry.js';
import type { ModelRunner } from '../models/runner.js';
import type { RowInputs, RowOutputs } from '../models/types.js';
import { ActorPool } from './actor-pool.js';
import { Engine, type PipelineResult } from './engine.js';

export interface VerdictOptions {
  /** The pipeline file whose schema, features and rules `executePipeline` uses. Default: the card-risk sample. */
  readonly pipeline?: string;
  /** Inference workers; 0 runs in-thread. Default 1. */
  readonly workers?: number;
  readonly runner?: ModelRunner;
  readonly scheduler?: SchedulerLike;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

export class Verdict {
  readonly metrics: Metrics;
  readonly #pipelinePath: string;
  readonly #pool: ActorPool;
  readonly #scheduler: SchedulerLike;
  readonly #logger: Logger;
  readonly #engines = new Map<string, Promise<Engine>>();
  #base: Promise<PipelineFile> | undefined;

  constructor(options: VerdictOptions = {}) {
    this.#pipelinePath = resolve(options.pipeline ?? defaultPipelinePath);
    this.#scheduler = options.scheduler ?? preciseScheduler;
    this.#logger = options.logger ?? silentLogger;
    this.metrics = options.metrics ?? createMetrics();
    const workers = options.workers ?? 1;
    this.#pool = new ActorPool({
      runner: options.runner ?? (workers === 0 ? new InThreadRunner() : new PiscinaRunner({ threads: workers, metrics: this.metrics })),
      ownsRunner: options.runner === undefined,
      scheduler: this.#scheduler,
      metrics: this.metrics,
      logger: this.#logger,
    });
  }

  /** Runs one model version on one row: `executeModel('fraud_gbt@production', { features: [...] })`. */
  async executeModel(modelId: string, input: RowInputs): Promise<RowOutputs> {
    return (await this.#engine(null)).executeModel(modelId, input);
  }

  /**
   * Runs an event through a pipeline. `target` is a pipeline name (the configured one) or a list of model
   * ids: those models then replace the pipeline's steps. A model the pipeline already uses keeps its step id
   * (so the rules still apply to it); any other model becomes a step named after the model.
   */
  async executePipeline(target: string | readonly string[], input: Record<string, unknown>): Promise<PipelineResult> {
    return (await this.#engine(typeof target === 'string' ? target : [...target])).evaluate(input);
  }

  async close(): Promise<void> {
    const engines = await Promise.allSettled(this.#engines.values());
    for (const e of engines) if (e.status === 'fulfilled') await e.value.close();
    await this.#pool.close();
  }

  #engine(target: string | string[] | null): Promise<Engine> {
    const key = target === null ? '' : typeof target === 'string' ? `pipeline:${target}` : `models:${target.join(',')}`;
    let engine = this.#engines.get(key);
    if (engine === undefined) {
      engine = this.#build(target);
      this.#engines.set(key, engine);
      // A failed build is not cached: the next call tries again (the registry may have been fixed).
      engine.catch(() => this.#engines.delete(key));
    }
    return engine;
  }

  async #build(target: string | string[] | null): Promise<Engine> {
    this.#base ??= loadPipelineFile(this.#pipelinePath);
    const base = await this.#base;
    if (typeof target === 'string' && target !== base.pipeline) {
      throw new ModelNotFoundError(`unknown pipeline "${target}" (configured: ${base.pipeline})`);
    }
    const file = Array.isArray(target) ? withModels(base, target) : base;
    return Engine.create(file, {
      baseDir: resolve(this.#pipelinePath, '..'),
      pool: this.#pool,
      scheduler: this.#scheduler,
      metrics: this.metrics,
      logger: this.#logger,
      registry: new ModelRegistry(resolve(this.#pipelinePath, '..', base.models.registry), this.#logger),
    });
  }
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
