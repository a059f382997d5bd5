/**
 * Live models: a running engine follows the registry's aliases. Every `aliasPollMs` (on the injected clock)
 * the id each step role uses (primary, canary, shadow; a bare name follows `production`, else the latest
 * version) is resolved again; when it names another version, that version is swapped in:
 *
 *   1. verify   its sha256 (`ModelRegistry.resolve`), its manifest against the real ONNX signature
 *               (models/verify-version.ts), and that it can stand in for the step's compiled version
 *               (config/step-compat.ts);
 *   2. load     in every thread that runs the step (`ModelThreads.prepare`: the main thread's actors and
 *               inference workers, every block worker), each warmed up;
 *   3. activate only when all of them acked: new blocks get the new bindings (generation + 1);
 *   4. unload   blocks in flight keep the bindings they started with (binding-leases.ts); once no block in
 *               flight and not the current bindings use the old version, it is unloaded everywhere.
 *
 * A version that fails any check or load leaves the old one serving: an error log line (with its code),
 * `verdict_model_swaps_total{event="failed"}` and `status()`'s `refused`; it is not tried again until the
 * alias moves again. Swaps, unloads and `refresh()` run one at a time, in order.
 */
import { Subject, type Observable, type SchedulerAction, type Subscription } from 'rxjs';
import { z } from 'zod';
import { roundToMicros, type Clock } from '../core/clock.js';
import type { CompiledPipeline, CompiledStep } from '../config/compiled.js';
import { stepIncompatibility } from '../config/step-compat.js';
import { ModelIntegrityError, ModelSignatureError, asVerdictError, type VerdictError } from '../core/errors.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { parseOptions } from '../core/options.js';
import type { ModelRegistry } from '../models/registry.js';
import type { ResolvedModel } from '../models/types.js';
import { verifyManifestSignature } from '../models/verify-version.js';
import type { ModelBindings, StepBinding } from '../pipeline/route/bindings.js';
import { BindingLeases, type BindingLease } from './binding-leases.js';
import type { ModelEvent, ModelRole, ModelsStatus, Refusal, RoleStatus, SwapResult } from './model-status.js';

export type { ModelEvent, ModelRole, ModelsStatus, Refusal, RoleStatus, SwapResult } from './model-status.js';

/** `LiveModelsOptions` fields with a default: the one place it lives. */
export const liveModelsSchema = z.object({
  follow: z.enum(['timer', 'on-use', 'off']).default('timer'),
});

/** How an engine follows aliases: see `LiveModelsOptions.follow`. */
export type FollowMode = z.output<typeof liveModelsSchema>['follow'];

/** Where a step's versions run: every thread that runs the step (main thread, inference workers, block workers). */
export interface ModelThreads {
  /** Loads and warms `model` for step `step` (pipeline index) in every thread; rejects with the first typed error. */
  prepare(step: number, model: ResolvedModel): Promise<void>;
  /** Unloads step `step`'s `model` in every thread (its actor stopped, executor dropped, session released). */
  retire(step: number, model: ResolvedModel): Promise<void>;
}

export interface LiveModelsOptions {
  readonly pipeline: CompiledPipeline;
  /** The bindings the engine started with (generation 0). */
  readonly initial: ModelBindings;
  readonly registry: Pick<ModelRegistry, 'inspect' | 'resolve'>;
  readonly threads: ModelThreads;
  /** Polls and swap durations. */
  readonly scheduler: Clock;
  /** Wall-clock time of refusals (`Refusal.at`). Default: Date. */
  readonly wallClock?: Pick<Clock, 'now'>;
  /** When absent, nothing is counted. */
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /**
   * How the aliases are followed. `timer` (default): checked every `aliasPollMs` on the clock (a daemon).
   * `on-use`: checked when a block takes its bindings, at most once every `aliasPollMs`, in the background
   * (the programmatic API: no timer keeps the caller's process alive). `off`: never (a block worker, told
   * by the main thread); nor is `verdict_model_info` exported.
   */
  readonly follow?: FollowMode;
  /** The manifest check; default `verifyManifestSignature` (for unit tests of the logic). */
  readonly verify?: (model: ResolvedModel) => Promise<void>;
}

interface RoleSlot {
  readonly step: number;
  readonly role: ModelRole;
  readonly id: string;
  refused: Refusal | undefined;
}

const ROLES: readonly ModelRole[] = ['primary', 'canary', 'shadow'];

function modelOf(binding: StepBinding, role: ModelRole): ResolvedModel | null {
  if (role === 'primary') return binding.primary;
  if (role === 'canary') return binding.canary?.model ?? null;
  return binding.shadow;
}

function withModel(binding: StepBinding, role: ModelRole, model: ResolvedModel): StepBinding {
  if (role === 'primary') return { ...binding, primary: model };
  if (role === 'canary') return { ...binding, canary: { model, percent: binding.canary?.percent ?? 0 } };
  return { ...binding, shadow: model };
}

/** The configured id of a step role, or null when the step has no such role. */
function configuredId(step: CompiledStep, role: ModelRole): string | null {
  if (role === 'primary') return step.modelId;
  return (role === 'canary' ? step.canary?.modelId : step.shadow?.modelId) ?? null;
}

export class LiveModels {
  readonly #pipeline: CompiledPipeline;
  readonly #registry: LiveModelsOptions['registry'];
  readonly #threads: ModelThreads;
  readonly #clock: Clock;
  readonly #wall: Pick<Clock, 'now'>;
  readonly #metrics: Metrics | undefined;
  readonly #log: Logger;
  readonly #follow: FollowMode;
  /** Clock time of the last check started on use (`on-use`). */
  #checkedAt = Number.NEGATIVE_INFINITY;
  readonly #verify: (model: ResolvedModel) => Promise<void>;
  readonly #slots: readonly RoleSlot[];
  readonly #leases: BindingLeases;
  /** Versions loaded for a step (`<step>|<ref>`), with the role they were loaded for: what may be unloaded. */
  readonly #loaded = new Map<string, { readonly step: number; readonly role: ModelRole; readonly model: ResolvedModel }>();
  readonly #events = new Subject<ModelEvent>();
  #bindings: ModelBindings;
  /** The tail of the one-at-a-time chain of checks and unloads. */
  #chain: Promise<unknown> = Promise.resolve();
  #timer: Subscription | undefined;
  #polling = false;
  #unloadQueued = false;
  #closed = false;

  constructor(options: LiveModelsOptions) {
    this.#pipeline = options.pipeline;
    this.#registry = options.registry;
    this.#threads = options.threads;
    this.#clock = options.scheduler;
    this.#wall = options.wallClock ?? Date;
    this.#metrics = options.metrics;
    this.#log = componentLogger(options.logger ?? silentLogger, 'live_models');
    this.#follow = parseOptions(liveModelsSchema, { follow: options.follow }, 'live models options').follow;
    this.#verify = options.verify ?? ((model) => verifyManifestSignature(model, options.pipeline.maxModelBytes));
    this.#bindings = options.initial;
    this.#leases = new BindingLeases(() => this.#scheduleUnload());
    this.#slots = options.pipeline.steps.flatMap((step, i) => ROLES.flatMap((role): RoleSlot[] => {
      const id = configuredId(step, role);
      const model = modelOf(options.initial.steps[i]!, role);
      return id === null || model === null ? [] : [{ step: i, role, id, refused: undefined }];
    }));
    for (const slot of this.#slots) {
      const model = modelOf(this.#bindings.steps[slot.step]!, slot.role)!;
      this.#loaded.set(`${slot.step}|${model.ref}`, { step: slot.step, role: slot.role, model });
      this.#setInfo(slot, model, 1);
    }
  }

  /** The bindings new blocks run now. */
  get bindings(): ModelBindings {
    return this.#bindings;
  }

  /** Loaded, failed and unloaded versions, as they happen. Completes on `close()`. */
  get events$(): Observable<ModelEvent> {
    return this.#events.asObservable();
  }

  /**
   * A lease on the current bindings for one block: release it once the block's outcomes are in, so old
   * versions are unloaded when no block in flight uses them.
   */
  lease(): BindingLease {
    if (this.#follow === 'on-use') this.#checkOnUse();
    return this.#leases.take(this.#bindings);
  }

  /** Blocks in flight by generation. */
  get inflight(): ReadonlyMap<number, number> {
    return this.#leases.inflight;
  }

  /** Starts polling every `aliasPollMs` (only in `timer` mode, and not when it is 0). */
  start(): void {
    const every = this.#pipeline.aliasPollMs;
    if (this.#follow !== 'timer' || every === 0 || this.#timer !== undefined || this.#closed || this.#slots.length === 0) return;
    const poll = (): void => {
      // A check still running (a slow load) is not queued again behind itself.
      if (this.#polling) return;
      this.#polling = true;
      void this.refresh().finally(() => { this.#polling = false; });
    };
    this.#timer = this.#clock.schedule(function tick(this: SchedulerAction<undefined>) {
      poll();
      this.schedule(undefined, every);
    }, every);
  }

  /** The versions in force by step and role, with refusals. */
  status(): ModelsStatus {
    return {
      generation: this.#bindings.generation,
      aliasPollMs: this.#follow === 'off' ? 0 : this.#pipeline.aliasPollMs,
      steps: this.#pipeline.steps.map((step, i) => ({
        step: step.id,
        roles: this.#slots.filter((s) => s.step === i).map((slot): RoleStatus => {
          const binding = this.#bindings.steps[i]!;
          return {
            role: slot.role,
            id: slot.id,
            ref: modelOf(binding, slot.role)!.ref,
            ...(slot.role === 'canary' && binding.canary !== null ? { percent: binding.canary.percent } : {}),
            ...(slot.refused === undefined ? {} : { refused: slot.refused }),
          };
        }),
      })),
    };
  }

  /**
   * Checks every alias now and swaps what moved; resolves with one result per attempted swap (none when
   * nothing moved, or when the versions are fixed: see `follows`) once they are done. Runs after any check
   * or unload already under way. Never rejects.
   */
  refresh(): Promise<readonly SwapResult[]> {
    // aliasPollMs 0 fixes the versions resolved at start-up: nothing moves them, not even a refresh.
    if (!this.follows) return Promise.resolve([]);
    return this.#enqueue(() => this.#checkAll());
  }

  /** Whether this engine follows aliases at all (false: `aliasPollMs` 0, or a block worker's engine). */
  get follows(): boolean {
    return this.#follow !== 'off' && this.#pipeline.aliasPollMs > 0;
  }

  /** Stops polling and waits for a check or unload under way. Versions stay loaded (the engine closes them). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.unsubscribe();
    await this.#chain;
    this.#events.complete();
  }

  /** `on-use`: a check in the background when the last one started `aliasPollMs` ago or more. */
  #checkOnUse(): void {
    const every = this.#pipeline.aliasPollMs;
    const now = this.#clock.now();
    if (every === 0 || this.#polling || this.#closed || now - this.#checkedAt < every) return;
    this.#checkedAt = now;
    this.#polling = true;
    void this.refresh().finally(() => { this.#polling = false; });
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(work);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #checkAll(): Promise<SwapResult[]> {
    const results: SwapResult[] = [];
    for (const slot of this.#slots) {
      if (this.#closed) break;
      const result = await this.#check(slot);
      if (result !== null) results.push(result);
    }
    return results;
  }

  /** One step role: null when its id still names the version in force (or one refused already). */
  async #check(slot: RoleSlot): Promise<SwapResult | null> {
    const current = modelOf(this.#bindings.steps[slot.step]!, slot.role)!;
    const started = this.#clock.now();
    let target: string;
    let intact: boolean;
    try {
      const inspection = await this.#registry.inspect(slot.id);
      target = inspection.model.ref;
      intact = inspection.integrity.ok;
    } catch (error) {
      // The id names no version now (an alias removed, a manifest that does not validate): keep serving.
      return this.#refuse(slot, current, slot.id, asVerdictError(error), started);
    }
    if (target === current.ref) {
      slot.refused = undefined;
      return null;
    }
    if (slot.refused?.ref === target) return null;
    try {
      if (!intact) throw new ModelIntegrityError(`${target} does not match its manifest's sha256`, { details: { model: target } });
      const model = await this.#registry.resolve(target);
      await this.#verify(model);
      const step = this.#pipeline.steps[slot.step]!;
      const incompatible = stepIncompatibility(step, model);
      if (incompatible !== null) throw new ModelSignatureError(incompatible, { details: { step: step.id, model: model.ref } });
      await this.#load(slot, model);
      this.#activate(slot, current, model);
      return { step: step.id, role: slot.role, from: current.ref, to: model.ref, ok: true, ms: roundToMicros(this.#clock.now() - started) };
    } catch (error) {
      return this.#refuse(slot, current, target, asVerdictError(error), started);
    }
  }

  /** Loads the version everywhere; a failure unloads it from the threads that did load it. */
  async #load(slot: RoleSlot, model: ResolvedModel): Promise<void> {
    const key = `${slot.step}|${model.ref}`;
    if (this.#loaded.has(key)) return;
    try {
      await this.#threads.prepare(slot.step, model);
    } catch (error) {
      await this.#threads.retire(slot.step, model).catch((err: unknown) => {
        this.#log.warn({ err: asVerdictError(err).toJSON(), model: model.ref }, 'unloading a version that failed to load failed');
      });
      throw error;
    }
    this.#loaded.set(key, { step: slot.step, role: slot.role, model });
  }

  #activate(slot: RoleSlot, from: ResolvedModel, to: ResolvedModel): void {
    const steps = [...this.#bindings.steps];
    steps[slot.step] = withModel(steps[slot.step]!, slot.role, to);
    this.#bindings = { generation: this.#bindings.generation + 1, steps };
    slot.refused = undefined;
    const step = this.#pipeline.steps[slot.step]!.id;
    this.#setInfo(slot, from, 0);
    this.#setInfo(slot, to, 1);
    this.#count(slot, 'loaded');
    this.#log.info({ step, role: slot.role, from: from.ref, to: to.ref, generation: this.#bindings.generation }, 'model swapped');
    this.#events.next({ event: 'loaded', step, role: slot.role, from: from.ref, to: to.ref, generation: this.#bindings.generation });
    // The old version may be idle already (no block in flight).
    this.#scheduleUnload();
  }

  #refuse(slot: RoleSlot, current: ResolvedModel, target: string, error: VerdictError, started: number): SwapResult {
    const step = this.#pipeline.steps[slot.step]!.id;
    const serialized = error.toJSON();
    const repeated = slot.refused?.ref === target && slot.refused.code === error.code;
    if (!repeated) {
      slot.refused = { ref: target, code: error.code, message: error.message, at: new Date(this.#wall.now()).toISOString() };
      this.#count(slot, 'failed');
      this.#log.error({ err: serialized, code: error.code, step, role: slot.role, from: current.ref, to: target },
        'model swap refused; the old version keeps serving');
      this.#events.next({ event: 'failed', step, role: slot.role, from: current.ref, to: target, error: serialized });
    }
    return { step, role: slot.role, from: current.ref, to: target, ok: false, error: serialized, ms: roundToMicros(this.#clock.now() - started) };
  }

  /** Unloads, in the chain, every loaded version that neither the current bindings nor a block in flight uses. */
  #scheduleUnload(): void {
    // Called whenever a generation's last block ends: cheap when every loaded version is current.
    if (this.#closed || this.#unloadQueued || !this.#hasStale()) return;
    this.#unloadQueued = true;
    void this.#enqueue(async () => {
      this.#unloadQueued = false;
      const used = new Set<string>();
      for (const bindings of [this.#bindings, ...this.#leases.held()]) {
        for (const [i, binding] of bindings.steps.entries()) {
          for (const role of ROLES) {
            const model = modelOf(binding, role);
            if (model !== null) used.add(`${i}|${model.ref}`);
          }
        }
      }
      for (const [key, loaded] of [...this.#loaded]) {
        if (used.has(key)) continue;
        this.#loaded.delete(key);
        const step = this.#pipeline.steps[loaded.step]!.id;
        try {
          await this.#threads.retire(loaded.step, loaded.model);
          this.#count({ step: loaded.step, role: loaded.role }, 'unloaded');
          this.#log.info({ step, role: loaded.role, model: loaded.model.ref }, 'model unloaded');
          this.#events.next({ event: 'unloaded', step, role: loaded.role, ref: loaded.model.ref });
        } catch (error) {
          this.#log.warn({ err: asVerdictError(error).toJSON(), step, model: loaded.model.ref }, 'unloading a model failed');
        }
      }
    });
  }

  /** Whether a loaded version is not in the current bindings (it may still be in flight). */
  #hasStale(): boolean {
    for (const { step, model } of this.#loaded.values()) {
      const binding = this.#bindings.steps[step]!;
      if (!ROLES.some((role) => modelOf(binding, role)?.ref === model.ref)) return true;
    }
    return false;
  }

  #count(slot: { readonly step: number; readonly role: ModelRole }, event: 'loaded' | 'failed' | 'unloaded'): void {
    const step = this.#pipeline.steps[slot.step]!.id;
    this.#metrics?.modelSwaps.inc({ pipeline: this.#pipeline.name, step, role: slot.role, event });
  }

  /** `verdict_model_info` on the main thread: 1 for a version in force, its series removed when it leaves. */
  #setInfo(slot: RoleSlot, model: ResolvedModel, value: 0 | 1): void {
    if (this.#follow === 'off' || this.#metrics === undefined) return;
    const labels = { pipeline: this.#pipeline.name, step: this.#pipeline.steps[slot.step]!.id, role: slot.role, model: model.name, version: String(model.version) };
    if (value === 1) this.#metrics.modelInfo.set(labels, 1);
    else this.#metrics.modelInfo.remove(labels);
  }
}
