/**
 * Counting what came out against what went in. Every input record is identified by its partition and
 * offset; a decision names its input by event id (header `verdict-event-id`, unique per generated event),
 * a dead letter by its source topic, partition and offset headers. An input with no output is lost; one
 * with more than one output was decided again (a duplicate, as at-least-once delivery allows after a crash).
 */
import type { ReadRecord } from './kafka-io.js';

export interface Location {
  readonly partition: number;
  readonly offset: number;
}

export interface Accounting {
  readonly inputs: number;
  readonly decisions: number;
  readonly deadLetters: number;
  /** Inputs with no decision and no dead letter. */
  readonly lost: readonly Location[];
  /** Inputs with more than one output, each once per extra output. */
  readonly duplicates: readonly Location[];
  /** Outputs that match no input record (must be none). */
  readonly strays: readonly ReadRecord[];
}

const locKey = (partition: number, offset: number): string => `${partition}/${offset}`;

function eventId(value: string | null): string | undefined {
  if (value === null) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    const id = (parsed as { id?: unknown } | null)?.id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

export function account(inputs: readonly ReadRecord[], decisions: readonly ReadRecord[], deadLetters: readonly ReadRecord[]): Accounting {
  const inputTopic = inputs[0]?.topic;
  const counts = new Map<string, number>();
  const byId = new Map<string, string>();
  for (const r of inputs) {
    counts.set(locKey(r.partition, r.offset), 0);
    const id = eventId(r.value);
    if (id !== undefined) byId.set(id, locKey(r.partition, r.offset));
  }
  const strays: ReadRecord[] = [];
  const count = (key: string | undefined, record: ReadRecord): void => {
    const n = key === undefined ? undefined : counts.get(key);
    if (key === undefined || n === undefined) strays.push(record);
    else counts.set(key, n + 1);
  };
  for (const d of decisions) count(byId.get(d.headers['verdict-event-id'] ?? ''), d);
  for (const d of deadLetters) {
    const h = d.headers;
    const fromInput = h['verdict-source-topic'] === inputTopic;
    count(fromInput ? locKey(Number(h['verdict-source-partition']), Number(h['verdict-source-offset'])) : undefined, d);
  }
  const lost: Location[] = [];
  const duplicates: Location[] = [];
  for (const [key, n] of counts) {
    const [partition, offset] = key.split('/').map(Number) as [number, number];
    if (n === 0) lost.push({ partition, offset });
    for (let i = 1; i < n; i++) duplicates.push({ partition, offset });
  }
  return { inputs: inputs.length, decisions: decisions.length, deadLetters: deadLetters.length, lost, duplicates, strays };
}

/** A one-line summary for assertion messages and diagnostics. */
export function describe(a: Accounting): string {
  const sample = (locs: readonly Location[]): string => locs.slice(0, 8).map((l) => locKey(l.partition, l.offset)).join(' ');
  return `inputs ${a.inputs}, decisions ${a.decisions}, dead letters ${a.deadLetters}, lost ${a.lost.length} [${sample(a.lost)}], ` +
    `duplicates ${a.duplicates.length} [${sample(a.duplicates)}], strays ${a.strays.length}`;
}
