/**
 * The ingest stage for a block: each record decoded, validated, identified and mapped to features, or, if
 * it cannot be, dead-lettered in its place. A record the transport could not read arrives `invalid` and is
 * dead-lettered with that error.
 */
import type { Clock } from '../../core/clock.js';
import type { DeadLetterer } from '../dead-letters.js';
import type { Outcome } from '../outcome.js';
import type { InboundRecord } from '../record.js';
import type { IngestedEvent, Ingestor } from './ingest.js';

export interface IngestedBlock {
  readonly ingested: IngestedEvent[];
  /** For each ingested event, its record's position in the block. */
  readonly positions: number[];
}

/** Fills `outcomes` with the dead letters; `events` (the API path) replaces decoding. */
export function ingestBlock(
  records: readonly InboundRecord[], events: readonly Record<string, unknown>[] | undefined, outcomes: Array<Outcome | undefined>,
  deps: { readonly ingestor: Ingestor; readonly deadLetter: DeadLetterer; readonly clock: Pick<Clock, 'now'> },
): IngestedBlock {
  const { ingestor, deadLetter, clock } = deps;
  const ingested: IngestedEvent[] = [];
  const positions: number[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    if (record.invalid !== undefined) {
      outcomes[i] = deadLetter(record, record.invalid);
      continue;
    }
    const event = events?.[i];
    try {
      ingested.push(event === undefined ? ingestor.fromRecord(record, clock.now()) : ingestor.fromEvent(event, record, clock.now()));
      positions.push(i);
    } catch (err) {
      outcomes[i] = deadLetter(record, err);
    }
  }
  return { ingested, positions };
}
