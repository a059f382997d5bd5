/**
 * The ingest stage for a block: each record decoded, validated, identified, given the per-key state values
 * it saw and mapped to features, or, if it cannot be, dead-lettered in its place. A record the transport
 * could not read arrives `invalid` and is dead-lettered with that error; one the state stage could not
 * apply state to arrives with a StateRead error and is dead-lettered with its code (state-read.ts).
 */
import type { Clock } from '../../core/clock.js';
import type { DeadLetterer } from '../dead-letters.js';
import type { Outcome } from '../outcome.js';
import type { InboundRecord } from '../record.js';
import type { StateRead } from '../state/types.js';
import type { IngestedEvent, Ingestor } from './ingest.js';
import { stateErrorOf } from './state-read.js';

export interface IngestedBlock {
  readonly ingested: IngestedEvent[];
  /** For each ingested event, its record's position in the block. */
  readonly positions: number[];
}

/**
 * Fills `outcomes` with the dead letters; `events` (the API path) replaces decoding; `states` holds each
 * record's StateRead (by position; absent for a pipeline without state).
 */
export function ingestBlock(
  records: readonly InboundRecord[], outcomes: Array<Outcome | undefined>,
  input: { readonly events?: readonly Record<string, unknown>[] | undefined; readonly states?: readonly (StateRead | undefined)[] | undefined },
  deps: { readonly ingestor: Ingestor; readonly deadLetter: DeadLetterer; readonly clock: Pick<Clock, 'now'> },
): IngestedBlock {
  const { ingestor, deadLetter, clock } = deps;
  const { events, states } = input;
  const ingested: IngestedEvent[] = [];
  const positions: number[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    if (record.invalid !== undefined) {
      outcomes[i] = deadLetter(record, record.invalid);
      continue;
    }
    const read = states?.[i];
    if (read !== undefined && 'error' in read) {
      outcomes[i] = deadLetter(record, stateErrorOf(read.error));
      continue;
    }
    const event = events?.[i];
    try {
      ingested.push(event === undefined ? ingestor.fromRecord(record, clock.now(), read?.values) : ingestor.fromEvent(event, record, clock.now(), read?.values));
      positions.push(i);
    } catch (err) {
      outcomes[i] = deadLetter(record, err);
    }
  }
  return { ingested, positions };
}
