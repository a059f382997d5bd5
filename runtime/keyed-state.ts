/**
 * The stream's per-key state (streams/types.ts `StreamState`): one `PartitionState` (pipeline/state/) per
 * assigned input partition, restored from its changelog partition before any of its records is processed,
 * applied to each block on the stream's thread in offset order, and made durable by the changelog records
 * each block returns (the stream writes them after the block's outcomes: streams/runtime/changelog-writes.ts).
 *
 * State lives on the stream's thread whatever the placement: a block worker gets the values each event saw
 * (`StateRead`), never the state, so blocks of one partition can run concurrently on several threads and
 * still see the state in offset order. The cost is one extra decode and validation of each record here.
 */
import type { CompiledPipeline } from '../config/compiled.js';
import { ConfigError, StateRestoreError, TransportError, asVerdictError, type VerdictError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { retry } from '../core/retry.js';
import type { InboundRecord, OutboundRecord, TopicPartition } from '../pipeline/record.js';
import type { ChangelogEntry, CompiledState, StateRead } from '../pipeline/state/types.js';
import type { Ingestor } from '../pipeline/ingest/ingest.js';
import { aheadOfRecord } from '../pipeline/state/event-fields.js';
import { PartitionState } from '../pipeline/state/partition-state.js';
import type { ChangelogStore, Source, StreamState } from '../streams/types.js';

/** What the keyed state needs of one partition's state (pipeline/state/partition-state.ts). */
export interface PartitionStateLike {
  apply(offset: number, key: Uint8Array | null, event: Readonly<Record<string, unknown>>): StateRead;
  takeChanges(): ChangelogEntry[];
  restore(entries: Iterable<ChangelogEntry>): { readonly keys: number; readonly records: number; readonly discarded: boolean };
  readonly keys: number;
  readonly bytes: number;
}

/** Counts a partition's state reports as they happen (the metrics below). */
export interface PartitionStateHooks {
  onEvict(reason: 'idle' | 'lru'): void;
  onLate(): void;
  onReplayed(): void;
  onDistinctSaturated(): void;
}

export interface KeyedStateDeps {
  /** The pipeline's name (metric labels, logs). */
  readonly pipeline: string;
  readonly definition: CompiledState;
  /** The changelog topic: its partition p holds input partition p's state. */
  readonly changelogTopic: string;
  /** The input topic, whose partition count the changelog's must match. */
  readonly inputTopic: string;
  readonly store: ChangelogStore;
  /** Decodes and validates a record (the core's own ingestion, `Ingestor.readEvent`); throws its typed error. */
  readonly readEvent: (record: InboundRecord) => Readonly<Record<string, unknown>>;
  readonly createPartition: (definition: CompiledState, hooks: PartitionStateHooks) => PartitionStateLike;
  /** Restore retries and their timing. */
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: Metrics;
}

/** How a failed restore is retried: until it succeeds or its partitions go (backing off from 100 ms to 5 s). */
const RESTORE_RETRY = { attempts: Infinity, initialDelayMs: 100, maxDelayMs: 5_000 } as const;

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class KeyedState implements StreamState {
  readonly #deps: KeyedStateDeps;
  readonly #partitions = new Map<string, PartitionStateLike>();
  /** Restores in progress, by partition: aborted when the partition is released or the state closed. */
  readonly #restoring = new Map<string, AbortController>();
  readonly #hooks: PartitionStateHooks;
  /** `state.maxAhead`: an event too far ahead of its record's timestamp is refused before it reaches the state. */
  readonly #ahead: ReturnType<typeof aheadOfRecord>;
  /** The changelog topic checked (or created) once, before the first restore reads it. */
  #prepared: Promise<void> | undefined;

  constructor(deps: KeyedStateDeps) {
    this.#deps = deps;
    const { metrics, pipeline } = deps;
    this.#ahead = aheadOfRecord(deps.definition);
    const evictions = { idle: metrics?.stateEvictions.labels({ pipeline, reason: 'idle' }), lru: metrics?.stateEvictions.labels({ pipeline, reason: 'lru' }) };
    const late = metrics?.stateLateEvents.labels({ pipeline });
    const replayed = metrics?.stateReplayedEvents.labels({ pipeline });
    const saturated = metrics?.stateDistinctSaturated.labels({ pipeline });
    // The changelog topic is checked (or created) now, beside the consumer's join, not at the first restore.
    this.#prepare().catch(() => undefined);
    this.#hooks = {
      onEvict: (reason) => evictions[reason]?.inc(),
      onLate: () => late?.inc(),
      onReplayed: () => replayed?.inc(),
      onDistinctSaturated: () => saturated?.inc(),
    };
  }

  restore(partitions: readonly TopicPartition[]): Promise<boolean> {
    const { store, changelogTopic, clock, logger, metrics, pipeline } = this.#deps;
    const controller = new AbortController();
    for (const tp of partitions) {
      this.#restoring.get(tpKey(tp))?.abort();
      this.#restoring.set(tpKey(tp), controller);
    }
    metrics?.stateRestoring.set({ pipeline }, this.#restoring.size);
    const startedAt = clock.now();
    const read = async (): Promise<Map<string, { state: PartitionStateLike; summary: ReturnType<PartitionStateLike['restore']> }>> => {
      const entries = new Map<number, ChangelogEntry[]>(partitions.map((tp) => [tp.partition, []]));
      await this.#prepare();
      try {
        await store.read(changelogTopic, partitions.map((tp) => tp.partition), (partition, key, value) => {
          // Records without a key are not the state's (nothing Verdict writes): skipped.
          if (key !== null) entries.get(partition)?.push({ key, value });
        }, controller.signal);
      } catch (err) {
        throw restoreError(err, changelogTopic);
      }
      return new Map(partitions.map((tp) => {
        const state = this.#deps.createPartition(this.#deps.definition, this.#hooks);
        const summary = state.restore(entries.get(tp.partition) ?? []);
        return [tpKey(tp), { state, summary }];
      }));
    };
    return retry(read, {
      ...RESTORE_RETRY, clock, signal: controller.signal,
      onRetry: (error, attempt, delayMs) => logger.warn({ topic: changelogTopic, code: error.code, attempt, delayMs }, 'state restore failed; retrying'),
    }).then((restored) => {
      const ms = clock.now() - startedAt;
      let installed = 0;
      for (const tp of partitions) {
        const key = tpKey(tp);
        if (this.#restoring.get(key) !== controller) continue;
        this.#restoring.delete(key);
        const { state, summary } = restored.get(key)!;
        this.#partitions.set(key, state);
        installed++;
        this.#gauge(tp, state);
        metrics?.stateRestoreSeconds.observe({ pipeline }, ms / 1000);
        const fields = { topic: tp.topic, partition: tp.partition, changelog: changelogTopic, keys: summary.keys, records: summary.records, bytes: state.bytes, ms };
        if (summary.discarded) logger.warn(fields, 'state restored empty: the changelog was written under another state definition');
        else logger.info(fields, 'state restored');
      }
      metrics?.stateRestoring.set({ pipeline }, this.#restoring.size);
      return installed === partitions.length;
    }, (err: unknown) => {
      for (const tp of partitions) if (this.#restoring.get(tpKey(tp)) === controller) this.#restoring.delete(tpKey(tp));
      metrics?.stateRestoring.set({ pipeline }, this.#restoring.size);
      if (controller.signal.aborted) return false;
      // Not retryable (a changelog topic that does not match the input): the partitions can never start.
      throw asVerdictError(err);
    });
  }

  release(partitions: readonly TopicPartition[]): void {
    const { metrics, pipeline } = this.#deps;
    for (const tp of partitions) {
      const key = tpKey(tp);
      this.#restoring.get(key)?.abort();
      this.#restoring.delete(key);
      if (this.#partitions.delete(key)) {
        const labels = { pipeline, topic: tp.topic, partition: String(tp.partition) };
        metrics?.stateKeys.remove(labels);
        metrics?.stateBytes.remove(labels);
      }
    }
    metrics?.stateRestoring.set({ pipeline }, this.#restoring.size);
  }

  apply(records: readonly InboundRecord[]): { states: (StateRead | undefined)[]; changelog: OutboundRecord[] } {
    const first = records[0];
    if (first === undefined) return { states: [], changelog: [] };
    const state = this.#partitions.get(tpKey(first));
    // The stream applies a block only once its partition is restored; reaching here without state is a bug.
    if (state === undefined) throw new StateRestoreError(`no state for ${first.topic}/${first.partition}: it was not restored`, { details: { topic: first.topic, partition: first.partition } });
    const states = records.map((record): StateRead | undefined => {
      if (record.invalid !== undefined) return undefined;
      let event: Readonly<Record<string, unknown>>;
      try {
        event = this.#deps.readEvent(record);
      } catch {
        // The core's own ingestion fails the record the same way, and dead-letters it with that error.
        return undefined;
      }
      return this.#ahead(event, record.timestamp) ?? state.apply(record.offset, record.key, event);
    });
    const changes = state.takeChanges();
    if (changes.length > 0) this.#gauge(first, state);
    const { changelogTopic } = this.#deps;
    const changelog = changes.map((c): OutboundRecord => ({
      topic: changelogTopic,
      partition: first.partition,
      // Copied: the encoder's output may be a view of a buffer it reuses, and these wait for their write.
      key: Buffer.from(c.key),
      value: c.value === null ? null : Buffer.from(c.value),
      headers: [],
    }));
    return { states, changelog };
  }

  /** Checks (or creates) the changelog topic once; a failure is tried again by the next restore. */
  #prepare(): Promise<void> {
    const { store, changelogTopic, inputTopic } = this.#deps;
    this.#prepared ??= store.prepare(changelogTopic, inputTopic).catch((err: unknown) => {
      this.#prepared = undefined;
      throw restoreError(err, changelogTopic);
    });
    return this.#prepared;
  }

  /** Gives up every restore in progress (a caller that built this state on its own, and is done with it). */
  close(): void {
    for (const controller of this.#restoring.values()) controller.abort();
    this.#restoring.clear();
  }

  #gauge(tp: TopicPartition, state: PartitionStateLike): void {
    const labels = { pipeline: this.#deps.pipeline, topic: tp.topic, partition: String(tp.partition) };
    this.#deps.metrics?.stateKeys.set(labels, state.keys);
    this.#deps.metrics?.stateBytes.set(labels, state.bytes);
  }
}

/** A read failure as the restore's retry sees it: transport failures retried, an aborted read or a bad record not. */
function restoreError(err: unknown, topic: string): VerdictError {
  if (err instanceof StateRestoreError) return err;
  const error = asVerdictError(err);
  if (err instanceof TransportError) return new StateRestoreError(`reading ${topic} failed: ${error.message}`, { cause: err, retryable: true, details: { topic, reason: error.code } });
  return error;
}

/**
 * The changelog topic of a pipeline's state: `state.changelogTopic` when set, else
 * `<group id>-<pipeline>-changelog` (group id `verdict` when the source has none), as Kafka Streams names
 * its changelogs after the application id (`<application.id>-<store>-changelog`). Whoever creates the
 * topic ahead of the daemon (the bench on the mock broker) derives it here too.
 */
export function changelogTopicName(pipelineName: string, changelogTopic: string | null | undefined, groupId: string | undefined): string {
  return changelogTopic ?? `${groupId ?? 'verdict'}-${pipelineName}-changelog`;
}

/**
 * Builds the stream's keyed state for a pipeline that declares state (undefined otherwise), on the source's
 * changelog store. The changelog topic: `changelogTopicName`.
 * Throws ConfigError when the source keeps no changelog.
 */
export function keyedStateFor(
  pipeline: Pick<CompiledPipeline, 'name' | 'state' | 'input'>,
  source: Pick<Source, 'changelog' | 'groupId'>,
  deps: Pick<KeyedStateDeps, 'readEvent' | 'clock' | 'logger' | 'metrics'>,
): KeyedState | undefined {
  const definition = pipeline.state;
  if (definition === null) return undefined;
  if (source.changelog === undefined) {
    throw new ConfigError(`pipeline ${pipeline.name} keeps per-key state, and its source has no changelog store`, { details: { pipeline: pipeline.name } });
  }
  return new KeyedState({
    ...deps,
    pipeline: pipeline.name,
    definition,
    changelogTopic: changelogTopicName(pipeline.name, definition.changelogTopic, source.groupId),
    inputTopic: pipeline.input.topic,
    store: source.changelog,
    createPartition: (def, hooks) => new PartitionState(def, hooks),
  });
}

/**
 * Per-key state for the programmatic API (`Engine.evaluate`, `Verdict.executePipeline`): one in-memory
 * partition, keyed by each event's decision key (its UTF-8 bytes, as a Kafka producer keying by it would
 * write), applied in call order. Nothing is written anywhere: it lives as long as the engine.
 */
export class CallState {
  readonly #state: PartitionState;
  readonly #identify: Ingestor['identifyEvent'];
  readonly #ahead: ReturnType<typeof aheadOfRecord>;

  constructor(definition: CompiledState, identify: Ingestor['identifyEvent']) {
    this.#state = new PartitionState(definition);
    this.#identify = identify;
    this.#ahead = aheadOfRecord(definition);
  }

  /**
   * Applies one event (`offset`: the call's sequence number; `timestamp`: the call's time, ms, for
   * `state.maxAhead`); undefined when the core will refuse the event itself.
   */
  apply(raw: Record<string, unknown>, offset: number, timestamp: number): StateRead | undefined {
    let identified: { readonly event: Readonly<Record<string, unknown>>; readonly key: string };
    try {
      identified = this.#identify(raw, null);
    } catch {
      return undefined;
    }
    const ahead = this.#ahead(identified.event, timestamp);
    if (ahead !== null) return ahead;
    const read = this.#state.apply(offset, Buffer.from(identified.key, 'utf8'), identified.event);
    // Not durable: the changes are dropped, so they do not pile up.
    this.#state.takeChanges();
    return read;
  }
}
