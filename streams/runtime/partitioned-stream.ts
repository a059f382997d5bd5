/**
 * The partitioned stream: the whole run from source to sink, as one RxJS pipeline:
 *
 *   source batches → admit (track offsets, backpressure) → per partition: process each admitted block
 *   through the per-event core (`process`: pipeline/stages.ts), blocks concurrently, emit outcomes
 *   in offset order → produce to the sink in batches → ack → ordered offset commits.
 *
 * Order holds within a partition; partitions run in parallel. Offsets are committed only when every
 * earlier offset of the partition has been acknowledged by the sink, so a crash loses nothing.
 *
 * Two bounds keep memory and latency flat under overload. Admission releases at most `maxInflight` records
 * into processing at a time (so a huge fetch cannot swamp the model actors); and backpressure starts at the
 * source: a partition is paused when `maxBufferedPerPartition` of its records are read and not yet
 * acknowledged, every partition when `maxBuffered` are, and they resume at half those marks.
 *
 * An operator can pause consumption (`pause()`, the admin API's POST /admin/pause): every assigned partition
 * is paused at the source, partitions assigned meanwhile start paused, and backpressure's resume leaves
 * them alone until `resume()`. Records already read are still decided, delivered and committed.
 *
 * Whatever the sink refuses record by record stays with that record (refusals.ts): a refused decision is
 * dead-lettered, a refused dead letter is written without its payload, and if even that is refused the
 * record's partition halts there (paused, never committed past it) while the others go on.
 *
 * Its lifecycle is core/lifecycle.ts's: starting → running → draining → stopped, or failed. `drain` is the
 * whole stop (wait for in-flight records, final commit) under one forced-stop timer.
 */
import { Subject, concatMap, filter, from, groupBy, map, mergeMap, tap, type Observable, type Subscription } from 'rxjs';
import { streamOptionsSchema, type StreamOptions, type StreamOptionsInput } from '../../config/stream-options.js';
import type { Clock } from '../../core/clock.js';
import { asVerdictError, type VerdictError } from '../../core/errors.js';
import { Lifecycle, stopWithin, type LifecycleState } from '../../core/lifecycle.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import { retry } from '../../core/retry.js';
import { Admission } from './admission.js';
import type { CommitOffset, CommitTracker } from './commit-tracker.js';
import { Backpressure } from './backpressure.js';
import { OffsetCommits, tpKey } from './offset-commits.js';
import type { EncodedOutcome } from '../../pipeline/outcome.js';
import { replaceRefused, type DeadLetterTarget } from './refusals.js';
import type { RecordBatch, RejectedRecord, SendOptions, Sink, Source, StreamState } from '../types.js';
import type { StateRead } from '../../pipeline/state/types.js';
import { ChangelogWrites, type ChangelogBlock } from './changelog-writes.js';
import { RestoreGate } from './restore-gate.js';
import type { InboundRecord, OutboundRecord, TopicPartition } from '../../pipeline/record.js';

export interface StreamDeps {
  readonly source: Source;
  readonly sink: Sink;
  /**
   * The per-event core for one block: `pipeline/stages.ts` (its blocks and `encodeBlock`), run on this thread
   * or in a block worker (runtime/block-pool.ts). One encoded outcome (a decision or dead letter, as the record the sink writes) per
   * record, in order; never rejects. `states`: what the per-key state gave each record (with `state`).
   */
  readonly process: (records: readonly InboundRecord[], states?: readonly (StateRead | undefined)[]) => Promise<EncodedOutcome[]>;
  /**
   * Per-key state (runtime/keyed-state.ts): restored on assignment before the partition's blocks start,
   * applied to each block in offset order, its changelog written after the block's outcomes and before
   * its offsets are committed (changelog-writes.ts). Absent: a stateless pipeline.
   */
  readonly state?: StreamState;
  readonly tracker: CommitTracker;
  /** Every timer and time read of the stream: commits, admission, sink retry backoffs, the forced stop. */
  readonly scheduler: Clock;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly options?: StreamOptionsInput;
  /** The pipeline's name, for metric labels. */
  readonly pipeline?: string;
  /** Where the outcome of a record goes when the sink refuses it (see refusals.ts). */
  readonly deadLetter: DeadLetterTarget;
  /** Called with each record and its encoded outcome, after the sink acknowledged it (the demo counts here). */
  readonly onDelivered?: (encoded: EncodedOutcome, record: InboundRecord) => void;
  /**
   * Best-effort output to finish once a drain has delivered and committed everything (the shadow topic,
   * runtime/shadow-topic.ts), given the milliseconds left of the drain's bound; cut when they run out. It
   * never changes the drain's report and must not reject. Not called after a forced stop.
   */
  readonly afterDrain?: (timeLeftMs: number) => Promise<void>;
  /** Told the offsets of every commit the source accepted (the next offset per partition). Must not throw. */
  readonly onCommitted?: (offsets: readonly CommitOffset[]) => void;
  /** Wraps the writes of each block's outcomes (the daemon's crash guard). Absent: they go straight to `send`. */
  readonly delivery?: DeliveryGuard;
}

/** How a block's outcomes are written through a guard (runtime/crash-guard.ts, which produces suspect records one per round). */
export interface DeliveryGuard {
  /**
   * Writes `outputs` through `send`, `outputs[i]` being `records[i]`'s outcome (a decision or dead letter),
   * in order; resolves with the records refused, by position, as `Sink.send` does, and rejects as it does.
   */
  send(records: readonly InboundRecord[], outputs: readonly OutboundRecord[], send: Send): Promise<readonly RejectedRecord[]>;
  /** A processed block's outcomes are all written (acknowledged, refusals replaced, or its partition halted). Must not throw. */
  written(records: readonly InboundRecord[]): void;
}

/** The sink's send, with the stream's retry of whole-send failures. */
export type Send = (records: readonly OutboundRecord[], options?: SendOptions) => Promise<readonly RejectedRecord[]>;

/** A batch as the stream tracks it: with the scheduler time it was read, for the end-to-end histogram. */
interface ReadBatch extends RecordBatch {
  readonly readAt: number;
}

interface Processed {
  readonly batch: ReadBatch;
  readonly encoded: readonly EncodedOutcome[];
  /** The block as the changelog writes track it, with per-key state. */
  readonly changelog?: ChangelogBlock<ReadBatch>;
}

/** A block of a partition revoked while it waited for its state: never processed, read again by the next owner. */
interface Abandoned {
  readonly batch: ReadBatch;
  readonly abandoned: true;
}

/**
 * How a failed produce round is retried: until it succeeds or the stream stops (acknowledged offsets are
 * all that is committed, so giving up would only stall the partition), backing off from 50 ms to 5 s. A
 * fixed policy of the stream, not an option: nothing else retries the sink.
 */
const SINK_RETRY = { attempts: Infinity, initialDelayMs: 50, maxDelayMs: 5_000 } as const;

/** What a stop did: whether every in-flight record was delivered and committed in time, and how many were not delivered. */
export interface DrainReport {
  readonly drained: boolean;
  readonly abandoned: number;
}

export class PartitionedStream {
  readonly #lifecycle = new Lifecycle();
  /** Aborted when the forced-stop timer fires: ends a sink retry the stop abandons. */
  readonly #stop = new AbortController();
  readonly #deps: StreamDeps;
  readonly #options: StreamOptions;
  readonly #assigned = new Map<string, TopicPartition>();
  /** What the source is told to pause and resume: backpressure, halts, the operator's pause (backpressure.ts). */
  readonly #backpressure: Backpressure;
  readonly #drained = new Subject<void>();
  readonly #admission: Admission<ReadBatch>;
  #subscription: Subscription | undefined;
  readonly #commits: OffsetCommits;
  /**
   * Partitions halted at an offset because the sink refused even a payload-less dead letter there: paused,
   * and nothing from that offset on is acknowledged, so nothing past it is committed.
   */
  readonly #halted = new Map<string, TopicPartition & { readonly offset: number }>();
  #failure: VerdictError | undefined;
  /** The end-to-end histogram's child for this pipeline, resolved once rather than per decision. */
  #endToEnd: { observe(v: number): void } | undefined;
  /** Blocks of partitions whose state is being restored wait here (with `state`). */
  readonly #gate = new RestoreGate();
  /** The order of changelog writes and commits (with `state`). */
  #changelog: ChangelogWrites<ReadBatch> | undefined;

  constructor(deps: StreamDeps) {
    this.#deps = deps;
    const given = Object.entries(deps.options ?? {}).filter(([, v]) => v !== undefined);
    this.#options = streamOptionsSchema.parse(Object.fromEntries(given));
    this.#commits = new OffsetCommits({
      source: deps.source, tracker: deps.tracker, scheduler: deps.scheduler, logger: deps.logger,
      owns: (key) => this.#assigned.has(key), ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }),
      ...(deps.onCommitted === undefined ? {} : { committed: deps.onCommitted }),
    });
    this.#backpressure = new Backpressure({
      source: deps.source, tracker: deps.tracker, bounds: this.#options, logger: deps.logger, assigned: this.#assigned,
      halted: (key) => this.#halted.has(key), ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }),
    });
    this.#admission = new Admission<ReadBatch>({ maxInflight: this.#options.maxInflight, blockSize: this.#options.blockSize, clock: deps.scheduler });
  }

  /** The lifecycle state now. */
  get state(): LifecycleState {
    return this.#lifecycle.state;
  }

  /** The lifecycle states, the current one first; completes on stopped or failed. */
  get state$(): Observable<LifecycleState> {
    return this.#lifecycle.state$;
  }

  /** Why the stream failed, once it has (state `failed`). */
  get failure(): VerdictError | undefined {
    return this.#failure;
  }

  /** Records read and not yet acknowledged: queued for admission or in processing. */
  get inflight(): number {
    return this.#deps.tracker.inflight();
  }

  /** True while some assigned partition waits for its state to be restored (not ready meanwhile). */
  get restoring(): boolean {
    return this.#gate.restoring;
  }

  /** Partitions halted where even a payload-less dead letter was refused, with the offset they stopped at. */
  halted(): Array<TopicPartition & { readonly offset: number }> {
    return [...this.#halted.values()];
  }

  /** The partitions this stream owns now (assignment order). */
  assigned(): TopicPartition[] {
    return [...this.#assigned.values()];
  }

  /** True while an operator's pause is in force (`pause()` until `resume()`). */
  get paused(): boolean {
    return this.#backpressure.operatorPaused;
  }

  /** Whether a partition is paused by backpressure (or halted), as opposed to the operator's pause. */
  throttled(tp: TopicPartition): boolean {
    return this.#backpressure.throttled(tp);
  }

  /**
   * The operator's pause: stops fetching from every assigned partition, and from every partition assigned
   * later, until `resume()`. Backpressure's resume does not undo it. Records already read are still decided,
   * delivered and committed. Idempotent; returns false when it changed nothing (already paused). Throws
   * nothing; a stream that is not running has nothing to pause but remembers the flag.
   */
  pause(): boolean {
    return this.#backpressure.pause();
  }

  /**
   * Ends the operator's pause: partitions neither throttled by backpressure nor halted fetch again (those
   * resume as backpressure and halts allow). Idempotent; returns false when it changed nothing. While the
   * stream drains or after it stopped, only the flag is cleared: a stop is never undone.
   */
  resume(): boolean {
    return this.#backpressure.resume(this.#lifecycle.state === 'running');
  }

  /** In flight, halted partitions aside: what a drain waits for. */
  #unsettled(): number {
    let stuck = 0;
    for (const tp of this.#halted.values()) stuck += this.#deps.tracker.inflight(tp);
    return this.#deps.tracker.inflight() - stuck;
  }

  start(): void {
    const { source, sink, process, logger } = this.#deps;
    if (this.#deps.pipeline !== undefined) this.#endToEnd = this.#deps.metrics?.endToEndSeconds.labels({ pipeline: this.#deps.pipeline });
    const { metrics } = this.#deps;
    metrics?.streamBound.set({ bound: 'max_inflight' }, this.#options.maxInflight);
    metrics?.streamBound.set({ bound: 'max_buffered' }, this.#options.maxBuffered);
    metrics?.streamBound.set({ bound: 'max_buffered_per_partition' }, this.#options.maxBufferedPerPartition);
    const sendRetrying: Send = (records, options) =>
      retry(() => sink.send(records, options), {
        ...SINK_RETRY,
        clock: this.#deps.scheduler,
        // A stop that runs out of time aborts it: a send retried against a broker that is away would
        // otherwise keep the abandoned work alive for ever.
        signal: this.#stop.signal,
        onRetry: (error, attempt, delayMs) => logger.warn({ code: error.code, attempt, delayMs }, 'sink send failed; retrying'),
      });

    // Before the source is subscribed: a block may start as soon as a partition is restored.
    if (this.#deps.state !== undefined) {
      this.#changelog = new ChangelogWrites<ReadBatch>({
        // A changelog write must land whole per partition (the state's exactness invariant).
        send: (records) => sendRetrying(records, { whole: true }),
        written: (batch) => this.#committable(batch),
        refused: (batch, error) => this.#halt(batch.records[0]!, error),
        failed: (err) => logger.warn({ err: asVerdictError(err).toJSON() }, 'changelog write abandoned: its blocks stay uncommitted and are read again'),
      });
    }
    this.#subscription = source.events$
      .pipe(
        tap((event) => {
          if (event.type === 'assigned') this.#onAssigned(event.partitions);
          else if (event.type === 'revoked') this.#onRevoked(event.partitions);
        }),
        filter((event) => event.type === 'batch'),
        map((event) => this.#intake(event.batch)),
        this.#admission.operator,
        tap(() => this.#deps.metrics?.admittedEvents.set(this.#admission.inflight)),
        groupBy((block) => tpKey(block)),
        mergeMap((partition$) =>
          partition$.pipe(
            // Start each block's work now; concatMap then only waits, so order costs no parallelism.
            map((batch) => this.#begin(batch, process)),
            concatMap((pending) => from(pending)),
          ),
        ),
        mergeMap(
          (processed) => from('abandoned' in processed ? Promise.resolve(processed) : this.#deliver(processed, sendRetrying)),
          this.#options.maxConcurrentSends,
        ),
      )
      .subscribe({
        next: (processed) => ('abandoned' in processed ? this.#abandoned(processed.batch) : this.#acknowledge(processed)),
        error: (err: unknown) => this.#fail(err),
      });
    this.#commits.start(this.#options.commitIntervalMs);
    this.#lifecycle.moveTo('running');
  }

  /**
   * Starts a block (in offset order per partition): once its partition's state is restored, applies the
   * state to it, here, in order, then hands it to processing, which runs concurrently with other blocks.
   */
  #begin(batch: ReadBatch, process: StreamDeps['process']): Promise<Processed | Abandoned> {
    const { state } = this.#deps;
    if (state === undefined) return process(batch.records).then((encoded) => ({ batch, encoded }));
    return this.#gate.run(batch, () => {
      const applied = state.apply(batch.records);
      const changelog = this.#changelog!.opened({ tp: batch, block: batch, changelog: applied.changelog });
      return process(batch.records, applied.states).then((encoded): Processed => ({ batch, encoded, changelog }));
    }).then((p) => p ?? { batch, abandoned: true });
  }

  /**
   * The stream's stop: stops fetching, waits for in-flight records to be delivered, and commits, all within
   * `timeoutMs` (the forced-stop timer, on the stream's clock). Ends `stopped` either way; `drained` is false
   * when the timer fired, and then the rest is abandoned with a log line: a sink retry still running is
   * aborted, and records neither delivered nor committed are read again by the partitions' next owner
   * (at-least-once). The source and sink are the caller's to close. A stream that already stopped or failed
   * reports `{ drained: true, abandoned: 0 }` or what it left in flight, without moving.
   */
  async drain(timeoutMs: number): Promise<DrainReport> {
    if (!this.#lifecycle.moveTo('draining')) {
      this.#detach();
      return this.#lifecycle.state === 'stopped' ? { drained: true, abandoned: 0 } : { drained: false, abandoned: this.#unsettled() };
    }
    this.#deps.source.pause([...this.#assigned.values()]);
    const startedAt = this.#deps.scheduler.now();
    const stop = await stopWithin(
      { clock: this.#deps.scheduler, timeoutMs, controller: this.#stop, onForced: () => this.#detach() },
      async () => {
        await this.#settled();
        this.#commits.stop();
        await this.commitNow();
      },
    );
    const { afterDrain } = this.#deps;
    const timeLeftMs = timeoutMs - (this.#deps.scheduler.now() - startedAt);
    if (!stop.forced && afterDrain !== undefined && timeLeftMs > 0) {
      await stopWithin({ clock: this.#deps.scheduler, timeoutMs: timeLeftMs, controller: new AbortController() }, () => afterDrain(timeLeftMs));
    }
    const abandoned = this.#unsettled();
    if (stop.forced) {
      this.#deps.logger.warn({ timeoutMs, abandoned },
        'forced stop: drain and commit did not finish in time; the abandoned records were not committed and are read again by their partitions\' next owner');
    }
    this.#detach();
    this.#lifecycle.moveTo('stopped');
    return { drained: !stop.forced, abandoned };
  }

  /** The stream cannot go on: detached, with the reason kept (`failure`) and logged. */
  #fail(err: unknown): void {
    if (this.#lifecycle.state === 'failed' || this.#lifecycle.state === 'stopped') return;
    this.#failure = asVerdictError(err);
    this.#deps.logger.error({ err: this.#failure.toJSON() }, 'decision stream failed');
    this.#detach();
    this.#lifecycle.moveTo('failed');
  }

  /** Resolves once nothing is in flight (halted partitions aside). */
  #settled(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#unsettled() === 0) return resolve();
      const sub = this.#drained.subscribe(() => { sub.unsubscribe(); resolve(); });
    });
  }

  /** Detaches the pipeline and the commit timer: nothing in flight reaches the sink, the tracker or the state any more. */
  #detach(): void {
    this.#commits.stop();
    this.#subscription?.unsubscribe();
  }

  /** Commits whatever is committable now (offset-commits.ts); serialised so commits never overtake each other. */
  commitNow(extra: readonly CommitOffset[] = []): Promise<void> {
    return this.#commits.commitNow(extra);
  }

  #onAssigned(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) this.#assigned.set(tpKey(tp), tp);
    if (partitions.length === 0) return;
    const { state } = this.#deps;
    if (state !== undefined) {
      const restored = state.restore(partitions);
      for (const tp of partitions) this.#gate.close(tp, restored);
      // A restore that cannot succeed (a changelog topic that does not match the input) fails the stream:
      // its partitions could never be processed.
      restored.catch((err: unknown) => this.#fail(err));
    }
    this.#backpressure.assigned(partitions, this.#lifecycle.state === 'draining');
  }

  #onRevoked(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      this.#assigned.delete(tpKey(tp));
      // Its next owner reads from the committed offset, before the halt, and tries again.
      if (this.#halted.delete(tpKey(tp))) this.#deps.metrics?.haltedPartitions.remove({ topic: tp.topic, partition: String(tp.partition) });
    }
    // Records not yet started are left to the partitions' next owner, which reads from the committed offset.
    this.#admission.drop(partitions);
    if (this.#deps.state !== undefined) {
      // Its state goes with it: blocks waiting for it are abandoned, unwritten changelog records dropped.
      for (const tp of partitions) {
        this.#gate.abandon(tp);
        this.#changelog?.drop(tp);
      }
      this.#deps.state.release(partitions);
    }
    // Commit what is done before the partitions go; the rest is re-read by their next owner.
    const owed = partitions.flatMap((tp) => this.#deps.tracker.revoke(tp) ?? []);
    this.commitNow(owed).catch(() => undefined);
    this.#backpressure.revoked(partitions);
    if (this.#unsettled() === 0) this.#drained.next();
  }

  /** Tracks a fetched batch's offsets and pauses the source where too much is buffered. */
  #intake(batch: RecordBatch): ReadBatch {
    const { tracker, metrics } = this.#deps;
    for (const r of batch.records) tracker.track(batch, r.offset);
    metrics?.inflight.set(tracker.inflight());
    this.#backpressure.read(batch);
    return { ...batch, readAt: this.#deps.scheduler.now() };
  }

  /** Sends a processed block; an outcome the sink refuses is replaced (refusals.ts) before the block is acknowledged. */
  async #deliver(processed: Processed, send: Send): Promise<Processed> {
    const { delivery } = this.#deps;
    const { batch } = processed;
    const outputs = processed.encoded.map((d) => d.output);
    const rejected = await (delivery === undefined ? send(outputs) : delivery.send(batch.records, outputs, send));
    if (rejected.length === 0) return processed;
    const encoded = [...processed.encoded];
    for (const { index, error } of rejected) {
      const record = batch.records[index]!;
      // The replacements are the record's outputs too: through the guard, as the record's own.
      const sendOne = delivery === undefined ? send : (records: readonly OutboundRecord[]) => delivery.send([record], records, send);
      const replaced = await replaceRefused(record, encoded[index]!, error, {
        send: sendOne, target: this.#deps.deadLetter, logger: this.#deps.logger, metrics: this.#deps.metrics,
      });
      if (replaced.kind === 'halted') this.#halt(record, replaced.error);
      else encoded[index] = replaced.encoded;
    }
    return { batch, encoded };
  }

  /** Stops a partition at a record whose outcome nothing could be written for: never silent, never skipped. */
  #halt(record: InboundRecord, error: VerdictError): void {
    const key = tpKey(record);
    if (!this.#assigned.has(key) || this.#halted.has(key)) return;
    const tp = { topic: record.topic, partition: record.partition };
    this.#halted.set(key, { ...tp, offset: record.offset });
    // State past the halt must not become durable: its records' outcomes are not written.
    this.#changelog?.drop(tp, record.offset, (batch) => batch.records[batch.records.length - 1]!.offset);
    this.#backpressure.hold(tp);
    this.#deps.metrics?.haltedPartitions.set({ topic: tp.topic, partition: String(tp.partition) }, record.offset);
    this.#deps.logger.error({ ...tp, offset: record.offset, err: error.toJSON() },
      'partition halted: the broker refused this record\'s decision, its dead letter and its payload-less dead letter; nothing past this offset is committed until the partition is reassigned');
  }

  /** A block's outcomes are acknowledged: observed and handed on, then committable (after its changelog, with state). */
  #acknowledge({ batch, encoded, changelog }: Processed): void {
    const { onDelivered, scheduler } = this.#deps;
    this.#deps.delivery?.written(batch.records);
    // Read to acknowledged, queueing in admission and the sink included: what the histogram promises.
    const seconds = (scheduler.now() - batch.readAt) / 1000;
    const { records } = batch;
    const haltedAt = this.#halted.get(tpKey(batch))?.offset ?? Infinity;
    for (let i = 0; i < records.length; i++) {
      // From a halt on, nothing is acknowledged: those records are read again by the partition's next owner.
      if (records[i]!.offset >= haltedAt) continue;
      this.#endToEnd?.observe(seconds);
      if (onDelivered !== undefined) onDelivered(encoded[i]!, records[i]!);
    }
    this.#admission.release(records.length);
    this.#deps.metrics?.admittedEvents.set(this.#admission.inflight);
    if (changelog === undefined || !this.#assigned.has(tpKey(batch))) this.#committable(batch);
    else this.#changelog!.delivered(changelog);
    if (this.#lifecycle.state === 'running') this.#backpressure.relieve();
  }

  /** A block's offsets go to the commit tracker: its outcomes (and changelog records, with state) are written. */
  #committable(batch: ReadBatch): void {
    const { tracker, metrics } = this.#deps;
    const haltedAt = this.#halted.get(tpKey(batch))?.offset ?? Infinity;
    for (const record of batch.records) if (record.offset < haltedAt) tracker.ack(batch, record.offset);
    metrics?.inflight.set(tracker.inflight());
    if (this.#lifecycle.state === 'running') this.#backpressure.relieve();
    if (this.#unsettled() === 0) this.#drained.next();
  }

  /** A block abandoned before it started (its partition was revoked while restoring): only admission forgets it. */
  #abandoned(batch: ReadBatch): void {
    this.#admission.release(batch.records.length);
    if (this.#unsettled() === 0) this.#drained.next();
  }
}
