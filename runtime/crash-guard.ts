/**
 * The crash guard: what the daemon puts around each block's processing so that a record that crashes the
 * whole process cannot crash it forever (README "When the process itself crashes").
 *
 *   1. Before a block is processed, the crash journal (streams/runtime/crash-journal.ts) is written ahead
 *      when its offsets are not yet covered, so that any crash finds it in a journaled range.
 *   2. Records in a suspect range (in flight in N consecutive crashes) are not processed here but in
 *      isolation, in child processes (runtime/poison-isolation.ts); the block's other records run as usual.
 *      A record that kills its child alone is dead-lettered with POISON_SUSPECTED, counted and logged.
 *   3. A poison record found ends its suspect range there (the range was written ahead, past what was in
 *      flight): later records run normally. Once the committed offsets pass a range, it is cleared from the
 *      journal. Records isolated and poison found are counted in the journal, so the status survives restarts.
 *   4. A block stays in the journal until its outputs are written (`written`), so a crash while producing
 *      them is in a journaled range too. While any suspect range is left, every send goes through one
 *      queue, and a suspect record's output is produced alone, in a round of its own, its offset journaled
 *      ahead (`producing`): a native producer that crashes on that output names the record. The next start
 *      makes it an output poison of its range (crash-history.ts): dead-lettered with POISON_SUSPECTED here,
 *      without its output produced, and written without native code (`avoidNative`: the librdkafka
 *      producer's kafkajs companion), since the dead letter carries the same input bytes.
 */
import { resolve } from 'node:path';
import type { CompiledPipeline } from '../config/compiled.js';
import type { Clock } from '../core/clock.js';
import { PoisonSuspectedError, asVerdictError } from '../core/errors.js';
import { componentLogger, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { encodeDeadLetter } from '../pipeline/encode-outcome.js';
import { toEncodedOutcome, type EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord, OutboundRecord, TopicPartition } from '../pipeline/record.js';
import type { ModelBindings } from '../pipeline/route/bindings.js';
import type { StateRead } from '../pipeline/state/types.js';
import type { SuspectRange } from '../streams/runtime/crash-history.js';
import { CrashJournal } from '../streams/runtime/crash-journal.js';
import type { DeliveryGuard, Send } from '../streams/runtime/partitioned-stream.js';
import type { RejectedRecord } from '../streams/types.js';
import { PoisonIsolation } from './poison-isolation.js';

type States = readonly (StateRead | undefined)[] | undefined;
type Run = (records: readonly InboundRecord[], states: States) => Promise<EncodedOutcome[]>;

/** What `Engine.stream` asks of a guard around each block's processing, and of the writes of its outcomes. */
export interface StreamGuard extends DeliveryGuard {
  /**
   * The block's encoded outcomes, one per record in order, processed by `run` or otherwise. Never rejects
   * unless `run` does. The block is in flight until `written` is called with the same array.
   */
  process(records: readonly InboundRecord[], states: States, bindings: ModelBindings, run: Run): Promise<EncodedOutcome[]>;
  /** Offsets the stream committed (the next offset per partition). */
  committed(offsets: readonly (TopicPartition & { readonly offset: number })[]): void;
}

/** A suspect range as the admin status shows it: its records isolated so far, how many were poison, whether it is cleared. */
export interface SuspectStatus extends SuspectRange {
  readonly isolated: number;
  readonly poison: number;
  /** The committed offset passed it: it is out of the journal. */
  readonly cleared: boolean;
}

export interface CrashGuardStatus {
  /** The journal file. */
  readonly journal: string;
  /** Runs in a row that crashed before this one. */
  readonly consecutiveCrashes: number;
  /** The journal's suspect ranges, and the last ones this run cleared (at most 16 kept). */
  readonly suspects: readonly SuspectStatus[];
}

/** Cleared suspect ranges the status keeps showing. */
const CLEARED_KEPT = 16;

export interface CrashGuardOptions {
  readonly journal: CrashJournal;
  /** The child processes (a fake in unit tests of this logic). */
  readonly isolation: Pick<PoisonIsolation, 'isolate' | 'close'>;
  /** Step ids, in pipeline order, to name the versions running in the journal. */
  readonly steps: readonly string[];
  readonly pipeline: string;
  /** Where an output poison's dead letter goes (the pipeline's dead-letter topic). */
  readonly deadLetterTopic: string;
  readonly logger: Logger;
  readonly metrics?: Metrics;
}

/** A suspect range's identity: its end moves down when its poison is found. */
const rangeKey = (s: SuspectRange): string => `${s.topic}\u0000${s.partition}\u0000${s.from}\u0000${s.foundAt}`;
const counted = (s: SuspectRange): { isolated: number; poison: number } => ({ isolated: s.isolated ?? 0, poison: s.poison ?? 0 });

export class CrashGuard implements StreamGuard {
  readonly #options: CrashGuardOptions;
  /** Suspect ranges this run has isolated records of (announced once per run). */
  readonly #met = new Set<string>();
  /** Suspect ranges this run cleared, oldest first. */
  readonly #cleared: SuspectStatus[] = [];
  /** Sends while suspect ranges are left, one after the other (see the module comment, 4). */
  #sending: Promise<unknown> = Promise.resolve();

  constructor(options: CrashGuardOptions) {
    this.#options = options;
  }

  process(records: readonly InboundRecord[], states: States, bindings: ModelBindings, run: Run): Promise<EncodedOutcome[]> {
    const { journal } = this.#options;
    journal.handing(records, { generation: bindings.generation, describe: () => this.#describe(bindings) });
    return journal.suspects.length === 0 ? run(records, states) : this.#guarded(records, states, bindings, run);
  }

  send(records: readonly InboundRecord[], outputs: readonly OutboundRecord[], send: Send): Promise<readonly RejectedRecord[]> {
    if (this.#options.journal.suspects.length === 0) return send(outputs);
    // One send at a time while suspects are left: a suspect record's output must be alone in the producer.
    const sent = this.#sending.then(() => this.#sendGuarded(records, outputs, send));
    this.#sending = sent.catch(() => undefined);
    return sent;
  }

  written(records: readonly InboundRecord[]): void {
    this.#options.journal.finished(records);
  }

  committed(offsets: readonly (TopicPartition & { readonly offset: number })[]): void {
    for (const s of this.#options.journal.committed(offsets)) {
      this.#met.delete(rangeKey(s));
      this.#cleared.push({ ...s, ...counted(s), cleared: true });
      if (this.#cleared.length > CLEARED_KEPT) this.#cleared.shift();
      this.#options.logger.info({ topic: s.topic, partition: s.partition, from: s.from, to: s.to, ...counted(s) },
        'suspect range committed: cleared from the crash journal');
    }
  }

  /** The run ends under control: children killed, the journal marked clean. Never rejects. */
  async close(): Promise<void> {
    this.#options.journal.close();
    await this.#options.isolation.close().catch(() => undefined);
  }

  status(): CrashGuardStatus {
    const { journal } = this.#options;
    return {
      journal: journal.path,
      consecutiveCrashes: journal.startUp.consecutive,
      suspects: [
        ...this.#cleared,
        ...journal.suspects.map((s) => ({ ...s, ...counted(s), cleared: false })),
      ],
    };
  }

  /**
   * Outside suspect ranges the outputs go in one send; each suspect record's alone, journaled ahead, except
   * an output poison's dead letter, which avoids native code instead. Refusals are mapped back to `records`.
   */
  async #sendGuarded(records: readonly InboundRecord[], outputs: readonly OutboundRecord[], send: Send): Promise<RejectedRecord[]> {
    const { journal } = this.#options;
    const rejected: RejectedRecord[] = [];
    const sendFrom = async (at: number, part: readonly OutboundRecord[], options?: { avoidNative: true }): Promise<void> => {
      if (part.length === 0) return;
      for (const r of await send(part, options)) rejected.push({ index: at + r.index, error: r.error });
    };
    let start = 0;
    try {
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!;
        if (journal.suspectOf(record) === undefined) continue;
        await sendFrom(start, outputs.slice(start, i));
        if (journal.outputPoison(record)) {
          // Not journaled: should the JS client crash on it, that is a crash like any other, counted.
          journal.producing(undefined);
          await sendFrom(i, [outputs[i]!], { avoidNative: true });
        } else {
          journal.producing(record);
          await sendFrom(i, [outputs[i]!]);
        }
        start = i + 1;
      }
      await sendFrom(start, outputs.slice(start));
    } finally {
      journal.producing(undefined);
    }
    return rejected;
  }

  /**
   * Cuts the block into runs of records with the same suspect range (or none), output poisons apart, and
   * processes each its way.
   */
  async #guarded(records: readonly InboundRecord[], states: States, bindings: ModelBindings, run: Run): Promise<EncodedOutcome[]> {
    const { journal } = this.#options;
    const parts: Array<Promise<EncodedOutcome[]>> = [];
    const kindOf = (r: InboundRecord): { suspect: SuspectRange | undefined; poison: boolean } => {
      const suspect = journal.suspectOf(r);
      return { suspect, poison: suspect !== undefined && journal.outputPoison(r) };
    };
    let start = 0;
    let kind = kindOf(records[0]!);
    for (let i = 1; i <= records.length; i++) {
      const next = i < records.length ? kindOf(records[i]!) : undefined;
      if (next !== undefined && next.suspect === kind.suspect && next.poison === kind.poison) continue;
      const piece = records.slice(start, i);
      const pieceStates = states?.slice(start, i);
      const { suspect } = kind;
      parts.push(suspect === undefined ? run(piece, pieceStates)
        : kind.poison ? Promise.resolve(this.#outputPoison(suspect, piece))
        : this.#isolate(suspect, piece, pieceStates, bindings));
      start = i;
      if (next !== undefined) kind = next;
    }
    return (await Promise.all(parts)).flat();
  }

  /** Records whose output crashed the process when produced alone: dead-lettered, their outputs never produced. */
  #outputPoison(suspect: SuspectRange, records: readonly InboundRecord[]): EncodedOutcome[] {
    const { pipeline, deadLetterTopic } = this.#options;
    return records.map((record) => {
      const error = new PoisonSuspectedError('its output crashed the process when produced alone (the native producer)', {
        details: { topic: record.topic, partition: record.partition, offset: record.offset },
      });
      const deadLetter = { kind: 'dead-letter', record, error, attempts: 1 } as const;
      this.#poisonFound(suspect, record, 'poison record: its output crashed the process when produced alone; dead-lettered without it');
      return toEncodedOutcome(deadLetter, encodeDeadLetter(deadLetter, deadLetterTopic, pipeline));
    });
  }

  /** Counts and logs a poison record of `suspect`. */
  #poisonFound(suspect: SuspectRange, record: InboundRecord, message: string): void {
    const { logger, metrics, pipeline } = this.#options;
    const { topic, partition } = suspect;
    metrics?.poisonRecords.inc({ topic, partition: String(partition) });
    metrics?.deadLetters.inc({ pipeline, code: PoisonSuspectedError.code });
    logger.error({ topic, partition, offset: record.offset, code: PoisonSuspectedError.code, range: { from: suspect.from, to: suspect.to } }, message);
  }

  async #isolate(suspect: SuspectRange, records: readonly InboundRecord[], states: States, bindings: ModelBindings): Promise<EncodedOutcome[]> {
    const { logger, metrics, isolation, journal } = this.#options;
    const { topic, partition } = suspect;
    const labels = { topic, partition: String(partition) };
    if (!this.#met.has(rangeKey(suspect))) {
      this.#met.add(rangeKey(suspect));
      metrics?.poisonIsolations.inc(labels);
      logger.warn({ topic, partition, from: suspect.from, to: suspect.to, crashes: suspect.crashes },
        'isolating a suspect range: it was in flight in consecutive crashes; its records run in child processes');
    }
    const first = records[0]!.offset;
    const last = records[records.length - 1]!.offset;
    const result = await isolation.isolate(records, states, bindings);
    const now = journal.isolated(suspect, records.length, result.poison.map((r) => r.offset));
    if (now.to < suspect.to) {
      logger.warn({ topic, partition, from: now.from, to: now.to, was: suspect.to },
        'suspect range ends at its poison record: the records after it run normally');
    }
    for (const record of result.poison) this.#poisonFound(suspect, record, 'poison record: it killed its isolation process alone; dead-lettered');
    logger.info({ topic, partition, from: first, to: last, records: records.length, poison: result.poison.length, children: result.children },
      'suspect records isolated');
    return result.encoded;
  }

  #describe(bindings: ModelBindings): string[] {
    return bindings.steps.map((s, i) => `${this.#options.steps[i] ?? i}=${s.primary.ref}${s.canary === null ? '' : `+canary:${s.canary.model.ref}`}${s.shadow === null ? '' : `+shadow:${s.shadow.ref}`}`);
  }
}

/** The daemon's `crashJournal` config block (config/daemon-schema.ts, where the defaults live). */
export interface CrashJournalConfig {
  readonly enabled: boolean;
  readonly dir: string;
  readonly crashesBeforeIsolation: number;
  readonly groupSize: number;
  readonly childTimeoutMs: number;
}

/**
 * How far ahead of a block the journal is written, in blocks. Measured by handing 2 M records in blocks of
 * 128 over 8 partitions to `CrashJournal.handing` on the 2-core development machine (one write, tmp + rename
 * on its virtual disk, took 100–300 µs): one block ahead cost 1.6 µs per record on the main thread, eight
 * 0.19 µs. A wider range only costs a few more records run in isolation after a crash loop.
 */
const JOURNAL_MARGIN_BLOCKS = 8;

/**
 * Opens the crash journal for `pipeline` in the consumer group, logs what the previous runs left (a crash,
 * suspect ranges) and returns the guard; undefined when the journal is off or every slot of its directory is
 * held by a live daemon, or its directory cannot be written (both logged: the daemon runs without it).
 * `blockSize`: the stream's (records per block).
 */
export function openCrashGuard(options: {
  readonly config: CrashJournalConfig;
  readonly groupId: string;
  readonly pipeline: CompiledPipeline;
  readonly blockSize: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly logLevel: string | null;
}): CrashGuard | undefined {
  const { config, metrics, pipeline } = options;
  if (!config.enabled) return undefined;
  const logger = componentLogger(options.logger, 'crash_guard');
  const dir = resolve(config.dir);
  let journal: CrashJournal | undefined;
  try {
    journal = CrashJournal.open({
      dir, groupId: options.groupId, pipeline: pipeline.name, threshold: config.crashesBeforeIsolation, margin: JOURNAL_MARGIN_BLOCKS * options.blockSize,
      logger, wallClock: Date.now, pid: process.pid,
    });
  } catch (err) {
    // A read-only file system must not keep the daemon from deciding: it runs, unprotected, and says so.
    logger.error({ err: asVerdictError(err).toJSON(), dir }, 'crash journal off: its directory cannot be written; a record that crashes the process would crash it on every restart');
    return undefined;
  }
  if (journal === undefined) {
    logger.warn({ dir }, 'crash journal off: every slot in its directory is held by a live daemon of this group and pipeline');
    return undefined;
  }
  const { crash, consecutive, found } = journal.startUp;
  metrics?.consecutiveCrashes.set(consecutive);
  if (crash !== undefined) {
    logger.warn({ pid: crash.pid, startedAt: new Date(crash.startedAt).toISOString(), inflight: crash.inflight, models: crash.models, consecutive },
      'the previous run crashed; what it had in flight is in the crash journal');
  }
  if (journal.startUp.outputPoison !== undefined) {
    logger.warn({ ...journal.startUp.outputPoison },
      'the previous run crashed producing one suspect record\'s output alone: the record is dead-lettered without it');
  }
  for (const s of found) {
    logger.warn({ topic: s.topic, partition: s.partition, from: s.from, to: s.to, crashes: s.crashes },
      'suspect range: in flight in consecutive crashes; its records will be processed in isolation');
  }
  logger.info({ path: journal.path, consecutive, suspects: journal.suspects.length }, 'crash journal open');
  const isolation = new PoisonIsolation({
    pipeline, groupSize: config.groupSize, childTimeoutMs: config.childTimeoutMs, clock: options.clock,
    logger, logLevel: options.logLevel,
  });
  if (journal.suspects.length > 0) isolation.prewarm();
  return new CrashGuard({
    journal, isolation, steps: pipeline.steps.map((s) => s.id), pipeline: pipeline.name, deadLetterTopic: pipeline.output.deadLetter, logger,
    ...(metrics === undefined ? {} : { metrics }),
  });
}
