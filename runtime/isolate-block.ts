/**
 * The failure policy of the blocks placement (runtime.mode: blocks), for one block sent to a block worker.
 * It is the model actor's policy, per record instead of per row, through the same mechanism
 * (core/isolate.ts):
 *   - the block is retried once through core/retry.ts when it failed retryably (its worker thread died);
 *   - if its thread dies again, the block is bisected: halves run one after the other without further
 *     retries, a half that succeeds keeps its encoded outcomes, and a single record that still kills its thread is
 *     the poison: it is dead-lettered byte for byte with MODEL_WORKER_CRASHED, never decided. A crash is not a
 *     model verdict, and a poison input must not be approved by a fail-open incomplete policy; the record is
 *     kept exactly as it came so that it can be replayed once the runtime is fixed;
 *   - any other failure of the block (its worker could not build its engine) dead-letters its records with
 *     that typed error, so the stream never stalls on it.
 */
import { WorkerCrashedError, type VerdictError } from '../core/errors.js';
import { runIsolated, type Isolation } from '../core/isolate.js';
import { encodeDeadLetter } from '../pipeline/encode-outcome.js';
import { toEncodedOutcome, type EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import type { StateRead } from '../pipeline/state/types.js';

/** A block, or a piece of one: its records and, for a pipeline with state, each record's StateRead. */
export interface BlockPiece {
  readonly records: readonly InboundRecord[];
  readonly states?: readonly (StateRead | undefined)[] | undefined;
}

export interface BlockIsolation {
  /** One attempt at a block in a worker: one encoded outcome per record, in order. Rejects with the typed error. */
  run(piece: BlockPiece): Promise<EncodedOutcome[]>;
  readonly deadLetterTopic: string;
  readonly pipeline: string;
  /**
   * The error that says the thread or process running a piece died (the one worth bisecting, and what an
   * unrecognised rejection of `run` becomes). Default WorkerCrashedError (a block worker thread); crash-loop
   * isolation (runtime/poison-isolation.ts) runs pieces in child processes and passes PoisonSuspectedError.
   */
  readonly crash?: typeof VerdictError;
  onRetry?(error: VerdictError, attempt: number): void;
}

const pieces: Pick<Isolation<BlockPiece, EncodedOutcome[]>, 'size' | 'halve'> = {
  size: (block) => block.records.length,
  // A record's StateRead goes with it into its half.
  halve: ({ records, states }) => {
    const mid = records.length >>> 1;
    return [
      { records: records.slice(0, mid), states: states?.slice(0, mid) },
      { records: records.slice(mid), states: states?.slice(mid) },
    ];
  },
};

/** One encoded outcome per record of `block`, in order. Never rejects. */
export async function processIsolated(block: BlockPiece, how: BlockIsolation): Promise<EncodedOutcome[]> {
  const encoded = new Array<EncodedOutcome | undefined>(block.records.length).fill(undefined);
  // Pieces are contiguous and settle in order, so each one's encoded outcomes go at the next position.
  let at = 0;
  const crash = how.crash ?? WorkerCrashedError;
  await runIsolated(block, {
    ...pieces,
    run: (piece) => how.run(piece),
    // Only a dead thread (or process) is worth bisecting: the records' own failures come back as dead letters
    // inside the worker's encoded, and an engine that cannot start would fail every half the same way.
    isolatable: (error) => error.code === crash.code,
    fallback: crash,
    onRetry: (error, attempt) => how.onRetry?.(error, attempt),
  }, (piece, outcome) => {
    if (outcome.ok) {
      for (const one of outcome.value) encoded[at++] = one;
      return;
    }
    const { error, attempts } = outcome;
    for (const record of piece.records) {
      const deadLetter = { kind: 'dead-letter', record, error, attempts } as const;
      encoded[at++] = toEncodedOutcome(deadLetter, encodeDeadLetter(deadLetter, how.deadLetterTopic, how.pipeline));
    }
  });
  return encoded as EncodedOutcome[];
}
