/**
 * The fused baseline: the least a single thread can do for each event on the embedded log. One loop pulls
 * up to a batch of records round-robin over the input partitions, decodes and validates them, writes their
 * features into one Float32Array, runs the trees and the autoencoder on the whole batch, the MLP only on
 * the rows the trees find risky, applies card-risk's rules as plain code, encodes JSON and appends the
 * outputs. No RxJS, no actors, no workers, no join, no commits: Verdict's orchestration, removed.
 * Lag is the loop's own: records appended but not yet pulled.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../../core/log.js';
import { EmbeddedLog } from '../../streams/embedded/embedded-log.js';
import { decodeRecord } from '../../pipeline/ingest/decode.js';
import type { InboundRecord, OutboundRecord } from '../../pipeline/record.js';
import type { StateValues } from '../../pipeline/state/types.js';
import { headerList, type BenchEvent } from '../events.js';
import { MLP_THRESHOLD, deadLetterRecord, decide, decisionRecord, loadBaselineModels, runModel, type BaselineModels } from './baseline-models.js';
import { EmbeddedOutputReader } from './embedded-reader.js';
import { compileBenchPipeline } from './pipeline.js';
import type { BenchTarget, OutputListener, SutCpu } from './target.js';
import { OUTPUT_RETENTION, type EmbeddedTargetOptions } from './verdict-embedded.js';

interface Accepted {
  readonly record: InboundRecord;
  readonly id: string;
  readonly key: string;
  readonly event: Readonly<Record<string, unknown>>;
  readonly state: StateValues;
}

export class FusedEmbeddedTarget implements BenchTarget {
  readonly name = 'fused' as const;
  readonly transport = 'embedded' as const;
  readonly description = 'Baseline: one hand-written loop on the embedded log (decode, batched onnxruntime, rules, encode), main thread only';
  readonly #options: EmbeddedTargetOptions;
  readonly #abort = new AbortController();
  #log: EmbeddedLog | undefined;
  #models: BaselineModels | undefined;
  #reader: EmbeddedOutputReader | undefined;
  #loop: Promise<void> | undefined;
  #inputTopic = '';
  #batchSize = 64;
  /** Records pulled so far, over all partitions. */
  #consumed = 0;

  constructor(options: EmbeddedTargetOptions) {
    this.#options = options;
  }

  async start(onOutput: OutputListener): Promise<void> {
    const { pipelinePath, partitions, logger } = this.#options;
    const pipeline = await compileBenchPipeline(pipelinePath, logger);
    const models = await loadBaselineModels(pipeline);
    const log = new EmbeddedLog({ defaultPartitions: partitions, maxRecordsPerPartition: this.#options.retention, logger });
    log.createTopic(pipeline.input.topic, partitions);
    log.createTopic(pipeline.output.topic, partitions, { maxRecordsPerPartition: OUTPUT_RETENTION });
    log.createTopic(pipeline.output.deadLetter, 1, { maxRecordsPerPartition: OUTPUT_RETENTION });
    const reader = new EmbeddedOutputReader(log);
    reader.follow(pipeline.output.topic, 'decision', onOutput);
    reader.follow(pipeline.output.deadLetter, 'dead-letter', onOutput);
    this.#log = log;
    this.#models = models;
    this.#reader = reader;
    this.#inputTopic = pipeline.input.topic;
    // The same batch bound as Verdict's micro-batches, so batching is not where the two differ.
    this.#batchSize = pipeline.steps[0]?.batching.maxBatchSize ?? 64;
    this.#loop = this.#run(log, models, logger);
  }

  send(events: readonly BenchEvent[]): void {
    const topic = this.#inputTopic;
    this.#log?.append(events.map((e) => ({ topic, key: e.key, value: e.value, headers: headerList(e) })));
  }

  lag(): Promise<number> {
    const end = this.#log?.endOffsets(this.#inputTopic).reduce((a, b) => a + b, 0) ?? 0;
    return Promise.resolve(end - this.#consumed);
  }

  rss(): Promise<number> {
    return Promise.resolve(process.memoryUsage.rss());
  }

  sutCpu(): Promise<SutCpu | null> {
    return Promise.resolve(null);
  }

  settings(): Readonly<Record<string, unknown>> {
    return { partitions: this.#options.partitions, maxBatchSize: this.#batchSize, thread: 'main', mlpThreshold: MLP_THRESHOLD };
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    await this.#reader?.stop();
    await this.#models?.close();
  }

  async #run(log: EmbeddedLog, models: BaselineModels, logger: Logger): Promise<void> {
    const topic = this.#inputTopic;
    const partitions = log.partitionCount(topic) ?? 1;
    const positions = new Array<number>(partitions).fill(0);
    const width = models.features.width;
    const rows = new Float32Array(this.#batchSize * width);
    const risky = new Float32Array(this.#batchSize * width);
    let first = 0;
    while (!this.#abort.signal.aborted) {
      const batch: InboundRecord[] = [];
      for (let i = 0; i < partitions && batch.length < this.#batchSize; i++) {
        const p = (first + i) % partitions;
        const records = log.read(topic, p, positions[p] ?? 0, this.#batchSize - batch.length);
        const last = records[records.length - 1];
        if (last !== undefined) positions[p] = last.offset + 1;
        for (const r of records) batch.push(r);
      }
      first = (first + 1) % partitions;
      if (batch.length === 0) {
        try {
          await log.waitForRecords(topic, this.#consumed + 1, this.#abort.signal);
        } catch {
          return; // stopped
        }
        continue;
      }
      this.#consumed += batch.length;
      try {
        log.append(await this.#process(batch, models, rows, risky, width));
      } catch (err) {
        logger.error({ err }, 'fused loop: batch failed');
      }
      // Let the harness's generator and reader run between batches, as any event-loop program must.
      await yieldToLoop();
    }
  }

  async #process(batch: readonly InboundRecord[], models: BaselineModels, rows: Float32Array, risky: Float32Array, width: number): Promise<OutboundRecord[]> {
    const out: OutboundRecord[] = [];
    const accepted: Accepted[] = [];
    for (const record of batch) {
      try {
        const event = models.validate(decodeRecord(record, models.format, models.limits));
        const state = models.state(record.partition, record.offset, record.key, event);
        models.features.map(event, rows, accepted.length * width, state);
        accepted.push({ record, id: event['id'] as string, key: event['key'] as string, event, state });
      } catch (err) {
        out.push(deadLetterRecord(models, err, record.key, record.value, record.headers));
      }
    }
    const n = accepted.length;
    if (n === 0) return out;
    const [gbt, anomaly] = await Promise.all([runModel(models.gbt, rows, n, width), runModel(models.anomaly, rows, n, width)]);
    // The cascade: gather the risky rows into one smaller batch for the MLP.
    const riskyRows: number[] = [];
    for (let i = 0; i < n; i++) {
      if ((gbt[i] ?? 0) > MLP_THRESHOLD) {
        risky.set(rows.subarray(i * width, (i + 1) * width), riskyRows.length * width);
        riskyRows.push(i);
      }
    }
    const mlpOut = riskyRows.length > 0 ? await runModel(models.mlp, risky, riskyRows.length, width) : new Float32Array(0);
    const mlpByRow = new Map<number, number>(riskyRows.map((row, j) => [row, mlpOut[j] ?? 0]));
    for (let i = 0; i < n; i++) {
      const a = accepted[i]!;
      const mlp = mlpByRow.get(i);
      const decision = decide(gbt[i] ?? 0, anomaly[i] ?? 0, mlp, a.event, a.state);
      out.push(decisionRecord(models, { id: a.id, key: a.key, decision, mlpRan: mlp !== undefined }, a.record.key));
    }
    return out;
  }
}
