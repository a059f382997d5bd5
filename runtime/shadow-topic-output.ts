/**
 * One engine's shadow topic (`output.shadowTopic`): the thread's record buffer, and the writer of the stream
 * running on it. Comparisons become records only when someone will write them: a stream of this engine is
 * running, or (a block worker) the main thread collects them. Kept apart from the engine, which only routes
 * comparisons here and hands a stream's sink over.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { CompiledPipeline } from '../config/compiled.js';
import type { ShadowComparison } from '../pipeline/decide/shadow-decisions.js';
import type { Sink } from '../streams/types.js';
import { ShadowRecordBuffer, ShadowTopicWriter, toShadowRecord, type ShadowRecord, type ShadowTopicWriterOptions } from './shadow-topic.js';

export interface ShadowTopicOutputOptions {
  readonly pipeline: CompiledPipeline;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Keep records with no stream running here (a block worker, collected by the main thread). */
  readonly keep: boolean;
  /** The buffer's bound; default SHADOW_TOPIC_BUFFER. */
  readonly bound?: number;
  /** Resolves once this thread's comparisons in progress are done. */
  readonly settled: () => Promise<void>;
}

export class ShadowTopicOutput {
  readonly #o: ShadowTopicOutputOptions;
  readonly #topic: string;
  readonly #buffer: ShadowRecordBuffer;
  #writer: ShadowTopicWriter | undefined;

  /** The output of a pipeline with a shadow topic and a shadow step; undefined otherwise. */
  static of(options: ShadowTopicOutputOptions): ShadowTopicOutput | undefined {
    const { pipeline } = options;
    const topic = pipeline.output.shadowTopic;
    if (topic === null || !pipeline.steps.some((s) => s.shadow !== null)) return undefined;
    return new ShadowTopicOutput(options, topic);
  }

  private constructor(options: ShadowTopicOutputOptions, topic: string) {
    this.#o = options;
    this.#topic = topic;
    this.#buffer = new ShadowRecordBuffer({ pipeline: options.pipeline.name, metrics: options.metrics, ...(options.bound === undefined ? {} : { bound: options.bound }) });
  }

  /** One comparison (ShadowDecisions' `onComparison`): buffered when it will be written. */
  record(comparison: ShadowComparison): void {
    if (this.#o.keep || this.#writer?.open === true) this.#buffer.push(toShadowRecord(comparison, this.#o.pipeline.name));
  }

  /**
   * The writer for a stream on `sink` (one stream at a time: a previous writer is closed). `collect`: the
   * block workers' records, in the blocks placement; without it the writer sends this thread's own.
   */
  openWriter(sink: Sink, collect?: ShadowTopicWriterOptions['collect']): ShadowTopicWriter {
    this.#writer?.close();
    const { pipeline, clock, metrics, logger, settled } = this.#o;
    this.#writer = new ShadowTopicWriter({
      topic: this.#topic, pipeline: pipeline.name, sink, buffer: this.#buffer, clock, metrics, logger,
      ...(collect === undefined ? { settled } : { collect }),
    });
    return this.#writer;
  }

  /** Takes the buffered records (a block worker's answer to a collection); `settle` first waits for comparisons in progress. */
  async take(settle: boolean): Promise<ShadowRecord[]> {
    if (settle) await this.#o.settled();
    return this.#buffer.take();
  }

  /** Stops the writer: what is still buffered is counted as dropped at the stop. */
  close(): void {
    this.#writer?.close();
  }
}
