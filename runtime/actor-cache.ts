/**
 * The model actors of a process: one per model version in use, shared by every engine and API call that
 * runs that version, so they all batch together on one runner.
 */
import type { Clock } from '../core/clock.js';
import { ModelActor } from '../actors/model-actor.js';
import type { Batching } from '../config/compiled.js';
import type { CircuitBreakerPolicy } from '../config/pipeline-schema.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { ModelRunner } from '../models/runner.js';
import type { ResolvedModel } from '../models/types.js';

export interface ActorCacheOptions {
  readonly runner: ModelRunner;
  readonly scheduler: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Whether closing the pool also closes the runner. */
  readonly ownsRunner: boolean;
}

/**
 * One model actor per model version (`ResolvedModel.ref`), created on first use, all on one runner, so that
 * every engine and API call running a version batches together. Pass one to several engines through
 * `EngineOptions.actors`; whoever made it closes it.
 */
export class ActorCache {
  readonly #options: ActorCacheOptions;
  readonly #actors = new Map<string, ModelActor>();
  /** Engines holding each version (`acquire`): a version is unloaded when the last one lets go. */
  readonly #holders = new Map<string, number>();

  constructor(options: ActorCacheOptions) {
    this.#options = options;
  }

  /**
   * The actor for a model version, created (and warming up) on first use. The first caller's batching and
   * circuit breaker win (defaults in the pipeline schema when absent).
   */
  actorFor(model: ResolvedModel, batching?: Batching, circuitBreaker?: CircuitBreakerPolicy): ModelActor {
    let actor = this.#actors.get(model.ref);
    if (actor === undefined) {
      const { runner, scheduler, metrics, logger } = this.#options;
      actor = new ModelActor({ model, runner, scheduler, metrics, logger, ...(batching ?? {}), ...(circuitBreaker === undefined ? {} : { circuitBreaker }) });
      this.#actors.set(model.ref, actor);
      // A failed warm-up is reported by start(); here it must only not become an unhandled rejection.
      actor.start().catch((err: unknown) => logger.error({ err, model: model.ref }, 'model actor failed to start'));
    }
    return actor;
  }

  /**
   * `actorFor`, counted: the caller (an engine step) holds the version until it calls `release(ref)`. Actors
   * only ever reached through `actorFor` (the programmatic API's `executeModel`) are not counted.
   */
  acquire(model: ResolvedModel, batching?: Batching, circuitBreaker?: CircuitBreakerPolicy): ModelActor {
    const actor = this.actorFor(model, batching, circuitBreaker);
    this.#holders.set(model.ref, (this.#holders.get(model.ref) ?? 0) + 1);
    return actor;
  }

  /**
   * Lets go of one hold on a version. The last one stops its actor (queued rows still run), forgets it, and
   * releases its sessions in the runner's threads; a later `actorFor` starts a fresh one. Resolves once
   * released; true when the version was unloaded.
   */
  async release(ref: string): Promise<boolean> {
    const held = (this.#holders.get(ref) ?? 0) - 1;
    if (held > 0) {
      this.#holders.set(ref, held);
      return false;
    }
    this.#holders.delete(ref);
    const actor = this.#actors.get(ref);
    if (actor === undefined) return false;
    this.#actors.delete(ref);
    await actor.stop();
    await this.#options.runner.release?.({ modelPath: actor.model.path, modelSha256: actor.model.manifest.sha256 });
    return true;
  }

  /** Whether an actor runs this version now. */
  has(ref: string): boolean {
    return this.#actors.has(ref);
  }

  /** The runner the actors share (to load a version in all its threads before traffic, runtime/live-models.ts). */
  get runner(): ModelRunner {
    return this.#options.runner;
  }

  /** Waits until every actor has loaded its model; rejects with the first typed load error. */
  async ready(): Promise<void> {
    await Promise.all([...this.#actors.values()].map((a) => a.start()));
  }

  /** Stops every actor (each runs its queued rows and waits for running batches first), forgets them, and closes the runner if it owns it. */
  async close(): Promise<void> {
    await Promise.all([...this.#actors.values()].map((a) => a.stop()));
    this.#actors.clear();
    if (this.#options.ownsRunner) await this.#options.runner.close();
  }
}
