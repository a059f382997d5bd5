/**
 * Verdict on the embedded transport, wired as `verdict demo` wires it: an in-process log, the engine's
 * stream between a consumer of the input topic and a producer, and the harness writing straight into the
 * log. Lag is the consumer group's: records appended but not yet committed.
 */
import type { Logger } from '../../core/log.js';
import { Engine } from '../../runtime/engine.js';
import { EmbeddedLog } from '../../streams/embedded/embedded-log.js';
import type { PartitionedStream } from '../../streams/runtime/partitioned-stream.js';
import { headerList, type BenchEvent } from '../events.js';
import { EmbeddedOutputReader } from './embedded-reader.js';
import type { PipelineFile } from '../../config/pipeline-schema.js';
import { loadBenchPipeline } from './pipeline.js';
import { withoutState } from './without-state.js';
import type { BenchTarget, OutputListener, SutCpu } from './target.js';

export interface EmbeddedTargetOptions {
  readonly pipelinePath: string;
  readonly partitions: number;
  /**
   * Records kept per partition. The log lives in the harness process, so keeping everything would grow
   * its heap (and its garbage collections) level after level; enough for the largest backlog a level
   * allows is enough.
   */
  readonly retention: number;
  readonly logger: Logger;
  /**
   * Run as `verdict-embedded-shadow`: with a shadow on one step (`{ step, model }`; null: the first step,
   * shadowed by its own model id, a shadow exactly as costly as the step). Absent: `verdict-embedded`.
   */
  readonly shadow?: ShadowSpec | null;
  /** Run as `verdict-embedded-no-state`: the pipeline with its per-key state taken out (`withoutState`). */
  readonly withoutState?: boolean;
}

/** A shadow to add to a pipeline step for the bench: the step's id and the shadow's model id. */
export interface ShadowSpec {
  readonly step: string;
  readonly model: string;
}

/** The pipeline file with `shadow` on one step (the first, with its own model id, when `shadow` is null). */
export function withShadow(file: PipelineFile, shadow: ShadowSpec | null): PipelineFile {
  const spec = shadow ?? { step: file.steps[0]?.id ?? '', model: file.steps[0]?.model ?? '' };
  if (!file.steps.some((s) => s.id === spec.step)) throw new Error(`--shadow: the pipeline has no step "${spec.step}"`);
  return { ...file, steps: file.steps.map((s) => (s.id === spec.step ? { ...s, shadow: spec.model } : s)) };
}

const GROUP = 'verdict-bench';

/**
 * Records kept per output partition. The reader takes each output as it is appended, so outputs need no
 * backlog: keeping few of them keeps the harness heap (and its garbage collections, which land on the
 * main thread of every embedded target) small.
 */
export const OUTPUT_RETENTION = 2_000;

export class VerdictEmbeddedTarget implements BenchTarget {
  readonly name: 'verdict-embedded' | 'verdict-embedded-shadow' | 'verdict-embedded-no-state';
  readonly transport = 'embedded' as const;
  readonly description: string;
  readonly #options: EmbeddedTargetOptions;
  #engine: Engine | undefined;
  #log: EmbeddedLog | undefined;
  #stream: PartitionedStream | undefined;
  #reader: EmbeddedOutputReader | undefined;
  #inputTopic = '';

  constructor(options: EmbeddedTargetOptions) {
    this.#options = options;
    const shadowed = options.shadow !== undefined;
    const stateless = options.withoutState === true;
    if (shadowed && stateless) throw new Error('an embedded bench target has a shadow or no state, not both');
    this.name = shadowed ? 'verdict-embedded-shadow' : stateless ? 'verdict-embedded-no-state' : 'verdict-embedded';
    const shadow = options.shadow === null ? 'the first step shadowed by its own model' : `step ${options.shadow?.step} shadowed by ${options.shadow?.model}`;
    const variant = shadowed ? `, ${shadow}` : stateless ? ', the pipeline without its per-key state (state features read event fields)' : '';
    this.description = `Verdict: Engine.stream over the embedded log (in-process), blocks in its worker thread (runtime.mode blocks)${variant}`;
  }

  async start(onOutput: OutputListener): Promise<void> {
    const { pipelinePath, partitions, logger } = this.#options;
    const loaded = await loadBenchPipeline(pipelinePath);
    const file = this.#options.shadow !== undefined ? withShadow(loaded.file, this.#options.shadow)
      : this.#options.withoutState === true ? withoutState(loaded.file) : loaded.file;
    const engine = await Engine.create(file, { baseDir: loaded.baseDir, logger });
    const { input, output } = engine.pipeline;
    const log = new EmbeddedLog({ defaultPartitions: partitions, maxRecordsPerPartition: this.#options.retention, logger });
    log.createTopic(input.topic, partitions);
    log.createTopic(output.topic, partitions, { maxRecordsPerPartition: OUTPUT_RETENTION });
    log.createTopic(output.deadLetter, 1, { maxRecordsPerPartition: OUTPUT_RETENTION });
    const reader = new EmbeddedOutputReader(log);
    reader.follow(output.topic, 'decision', onOutput);
    reader.follow(output.deadLetter, 'dead-letter', onOutput);
    await engine.prepareStream();
    this.#stream = engine.stream(log.consumer({ groupId: GROUP, topics: [input.topic] }), log.producer());
    this.#engine = engine;
    this.#log = log;
    this.#reader = reader;
    this.#inputTopic = input.topic;
  }

  send(events: readonly BenchEvent[]): void {
    const topic = this.#inputTopic;
    this.#log?.append(events.map((e) => ({ topic, key: e.key, value: e.value, headers: headerList(e) })));
  }

  lag(): Promise<number> {
    return Promise.resolve(this.#log?.totalLag(GROUP, this.#inputTopic) ?? 0);
  }

  rss(): Promise<number> {
    return Promise.resolve(process.memoryUsage.rss());
  }

  sutCpu(): Promise<SutCpu | null> {
    return Promise.resolve(null);
  }

  settings(): Readonly<Record<string, unknown>> {
    const p = this.#engine?.pipeline;
    return {
      partitions: this.#options.partitions,
      workers: p?.placement.workers,
      blocks: p?.placement.blocks,
      inference: p?.placement.inference,
      intraOpThreads: p?.placement.intraOpThreads,
      batching: Object.fromEntries((p?.steps ?? []).map((s) => [s.id, s.batching])),
      shadows: Object.fromEntries((p?.steps ?? []).flatMap((s) => (s.shadow === null ? [] : [[s.id, s.shadow.model.ref]]))),
      join: p?.join,
      state: p?.state === null || p?.state === undefined ? null : p.state.aggregates.map((a) => a.name),
    };
  }

  async stop(): Promise<void> {
    await this.#stream?.drain(5_000);
    await this.#reader?.stop();
    await this.#engine?.close();
  }
}
