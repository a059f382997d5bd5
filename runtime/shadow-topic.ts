/**
 * The shadow topic (`output.shadowTopic`): one record per compared event with both decisions side by side,
 * written best effort, off the commit path.
 *
 * A record is keyed like the event's decision (the input record's key bytes, null when it had none) and its
 * value is UTF-8 JSON (`ShadowTopicValue`):
 *
 *   { "pipeline": "card-risk", "eventId": "e1", "key": "card-1", "step": "gbt", "agree": false,
 *     "primary": { "model": "fraud_gbt@1", "action": "approve", "score": 0.12, "reasons": [], "outputs": { … } },
 *     "shadow":  { "model": "fraud_gbt@2", "action": "review",  "score": 0.61, "reasons": ["…"], "outputs": { … } } }
 *
 * `primary` is the decision made (its action, score and reasons as on the output topic), `shadow` the one the
 * step's shadow would have made (pipeline/decide/shadow-decisions.ts); `model` and `outputs` are the step's
 * version and outputs on each side. No headers.
 *
 * Cost is bounded: each thread that compares (the main thread, or each block worker) keeps its records in a
 * `ShadowRecordBuffer` of at most SHADOW_TOPIC_BUFFER records; beyond it a record is dropped and counted
 * (`verdict_shadow_topic_dropped_total{reason="overflow"}`). The main thread's `ShadowTopicWriter` takes
 * them (from its own buffer, and in the blocks placement from every block worker by a control request every
 * SHADOW_COLLECT_MS on the engine's clock) and sends them through the stream's sink with at most one send in
 * flight. Nothing waits for it: not a block, not a commit. A send that fails is not retried: its records are
 * counted (`reason="failed"`); records left when the stream stops are counted too (`reason="shutdown"`).
 * Sent records are counted in `verdict_shadow_topic_sent_total`.
 */
import type { Clock } from '../core/clock.js';
import { asVerdictError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { ShadowComparison, ShadowSide } from '../pipeline/decide/shadow-decisions.js';
import type { OutboundRecord } from '../pipeline/record.js';
import type { Sink } from '../streams/types.js';
import type { SchedulerAction, Subscription } from 'rxjs';

/** Records a thread keeps for the shadow topic at most; more are dropped (`reason="overflow"`). */
export const SHADOW_TOPIC_BUFFER = 10_000;
/** Records one send carries at most. */
export const SHADOW_TOPIC_SEND_MAX = 1_000;
/** How often (ms) the main thread collects the block workers' records. */
export const SHADOW_COLLECT_MS = 200;
/** How long (ms) a periodic collection waits for every block worker before it gives up (that round only). */
const COLLECT_TIMEOUT_MS = 5_000;

/** The JSON value of a shadow-topic record (see the module comment). */
export interface ShadowTopicValue {
  readonly pipeline: string;
  readonly eventId: string;
  /** The decision's key (a string; the record key carries the input key's bytes). */
  readonly key: string;
  readonly step: string;
  readonly agree: boolean;
  /** Each side: the step's version (`model`) and outputs, and the decision's action, score and reasons. */
  readonly primary: ShadowSide;
  readonly shadow: ShadowSide;
}

/**
 * A shadow-topic record before its topic is known: plain data, cloned as is from a block worker (a key's
 * Buffer arrives as a Uint8Array).
 */
export interface ShadowRecord {
  readonly key: Uint8Array | null;
  readonly value: string;
}

/** One comparison as a shadow-topic record. */
export function toShadowRecord(c: ShadowComparison, pipeline: string): ShadowRecord {
  const value: ShadowTopicValue = {
    pipeline, eventId: c.eventId, key: c.key, step: c.step, agree: c.agree,
    primary: c.primary, shadow: c.shadow,
  };
  return { key: c.recordKey, value: JSON.stringify(value) };
}

/** A thread's shadow records, at most `bound` of them; a record pushed beyond is dropped and counted. */
export class ShadowRecordBuffer {
  #records: ShadowRecord[] = [];
  readonly #bound: number;
  readonly #dropped: { inc(n?: number): void } | undefined;
  /** Called after each push that kept its record (the writer's cue to send). */
  onRecord: (() => void) | undefined;

  constructor(options: { pipeline: string; metrics?: Metrics; bound?: number }) {
    this.#bound = options.bound ?? SHADOW_TOPIC_BUFFER;
    this.#dropped = options.metrics?.shadowTopicDropped.labels({ pipeline: options.pipeline, reason: 'overflow' });
  }

  get size(): number {
    return this.#records.length;
  }

  push(record: ShadowRecord): void {
    if (this.#records.length >= this.#bound) {
      this.#dropped?.inc();
      return;
    }
    this.#records.push(record);
    this.onRecord?.();
  }

  /** Removes and returns the oldest `max` records (all by default). */
  take(max = Infinity): ShadowRecord[] {
    if (max >= this.#records.length) {
      const all = this.#records;
      this.#records = [];
      return all;
    }
    return this.#records.splice(0, max);
  }
}

export interface ShadowTopicWriterOptions {
  readonly topic: string;
  readonly pipeline: string;
  /** The stream's sink. */
  readonly sink: Sink;
  /** The main thread's buffer (its own comparisons, and what is collected from the block workers). */
  readonly buffer: ShadowRecordBuffer;
  /**
   * In the blocks placement: every block worker's records, taken from their buffers. `settle`: each worker
   * first waits for the comparisons it has started. Rejects when a worker does not answer in `timeoutMs`.
   */
  readonly collect?: (settle: boolean, timeoutMs: number) => Promise<readonly ShadowRecord[]>;
  /** On the main thread: resolves once the comparisons started are done (before a flush takes the buffer). */
  readonly settled?: () => Promise<void>;
  readonly clock: Clock;
  readonly metrics?: Metrics;
  readonly logger: Logger;
}

/** Sends a pipeline's shadow records to the shadow topic: one send in flight, never awaited by the stream. */
export class ShadowTopicWriter {
  readonly #o: ShadowTopicWriterOptions;
  readonly #sent: { inc(n?: number): void } | undefined;
  readonly #failed: { inc(n?: number): void } | undefined;
  readonly #shutdown: { inc(n?: number): void } | undefined;
  #sending: Promise<void> | undefined;
  /** The periodic collection in progress (at most one). */
  #collecting: Promise<void> | undefined;
  #timer: Subscription | undefined;
  /** Set once flushed or closed: no more sends; what is left is counted as dropped. */
  #stopped = false;
  /** This writer's totals, for the stop's log line (the counters die with the process). */
  readonly #totals = { sent: 0, failed: 0, droppedAtStop: 0 };

  constructor(options: ShadowTopicWriterOptions) {
    this.#o = options;
    const child = (reason: string) => options.metrics?.shadowTopicDropped.labels({ pipeline: options.pipeline, reason });
    this.#sent = options.metrics?.shadowTopicSent.labels({ pipeline: options.pipeline });
    [this.#failed, this.#shutdown] = [child('failed'), child('shutdown')];
    options.buffer.onRecord = () => this.#kick();
    const collect = options.collect;
    if (collect !== undefined) {
      const tick = (): void => { void this.#collectOnce(collect, false, COLLECT_TIMEOUT_MS); };
      this.#timer = options.clock.schedule(function again(this: SchedulerAction<undefined>) {
        tick();
        this.schedule(undefined, SHADOW_COLLECT_MS);
      }, SHADOW_COLLECT_MS);
    }
  }

  /**
   * Sends what is left within `timeoutMs` (the time left of the stream's drain): the block workers' records
   * (once their comparisons in progress are done), then the buffer, one send at a time. Then stops: records
   * not sent by then are counted as dropped (`shutdown`). Never rejects.
   */
  async flush(timeoutMs: number): Promise<void> {
    this.#timer?.unsubscribe();
    const deadline = this.#o.clock.now() + timeoutMs;
    const left = (): number => Math.max(0, deadline - this.#o.clock.now());
    let timer: Subscription | undefined;
    const expired = new Promise<void>((resolve) => { timer = this.#o.clock.schedule(() => resolve(), timeoutMs); });
    const work = async (): Promise<void> => {
      await this.#o.settled?.();
      // A periodic round still running lands its records first, so that none arrive after the stop.
      await this.#collecting;
      if (this.#o.collect !== undefined) await this.#collectOnce(this.#o.collect, true, left());
      while (!this.#stopped && (this.#sending !== undefined || this.#o.buffer.size > 0)) {
        this.#kick();
        await this.#sending;
      }
    };
    await Promise.race([work(), expired]);
    timer?.unsubscribe();
    this.close();
    // What the shadow topic got over this writer's life, said once at the stop: after it, the counters are gone.
    this.#o.logger.info({ topic: this.#o.topic, ...this.#totals }, 'shadow topic flushed');
  }

  /** True until flushed or closed: records pushed now are still sent. */
  get open(): boolean {
    return !this.#stopped;
  }

  /** Stops at once: no more collections or sends; records still buffered are counted as dropped (`shutdown`). */
  close(): void {
    this.#timer?.unsubscribe();
    if (this.#stopped) return;
    this.#stopped = true;
    this.#o.buffer.onRecord = undefined;
    const left = this.#o.buffer.take().length;
    if (left > 0) this.#dropAtStop(left);
  }

  #dropAtStop(records: number): void {
    this.#shutdown?.inc(records);
    this.#totals.droppedAtStop += records;
  }

  #collectOnce(collect: NonNullable<ShadowTopicWriterOptions['collect']>, settle: boolean, timeoutMs: number): Promise<void> {
    if (!settle && this.#collecting !== undefined) return this.#collecting;
    const round = this.#collectRound(collect, settle, timeoutMs);
    if (!settle) {
      this.#collecting = round;
      void round.finally(() => { this.#collecting = undefined; });
    }
    return round;
  }

  async #collectRound(collect: NonNullable<ShadowTopicWriterOptions['collect']>, settle: boolean, timeoutMs: number): Promise<void> {
    try {
      const records = await collect(settle, timeoutMs);
      if (this.#stopped) {
        if (records.length > 0) this.#dropAtStop(records.length);
        return;
      }
      for (const r of records) this.#o.buffer.push(r);
    } catch (error) {
      // A worker that did not answer in time, or a pool closing: this round's records are lost, uncounted
      // (rare: a worker stuck or dying). Records of workers that did not answer wait for the next round.
      this.#o.logger.debug({ err: asVerdictError(error).toJSON() }, 'shadow topic: collecting from the block workers failed');
    }
  }

  /** Starts a send of the oldest records unless one is in flight (or nothing is buffered). */
  #kick(): void {
    if (this.#sending !== undefined || this.#stopped) return;
    const batch = this.#o.buffer.take(SHADOW_TOPIC_SEND_MAX);
    if (batch.length === 0) return;
    const { topic, sink } = this.#o;
    const records: OutboundRecord[] = batch.map((r) => ({
      topic,
      key: r.key === null ? null : Buffer.from(r.key.buffer, r.key.byteOffset, r.key.byteLength),
      value: r.value,
      headers: [],
    }));
    this.#sending = Promise.resolve()
      .then(() => sink.send(records))
      .then(
        (rejected) => {
          this.#sent?.inc(records.length - rejected.length);
          this.#totals.sent += records.length - rejected.length;
          this.#totals.failed += rejected.length;
          if (rejected.length > 0) this.#failed?.inc(rejected.length);
        },
        (error: unknown) => {
          this.#failed?.inc(records.length);
          this.#totals.failed += records.length;
          this.#o.logger.warn({ err: asVerdictError(error).toJSON(), records: records.length }, 'shadow topic: a send failed; its records are dropped');
        },
      )
      .finally(() => {
        this.#sending = undefined;
        this.#kick();
      });
  }
}
