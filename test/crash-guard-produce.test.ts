/**
 * The crash guard's writes while suspect ranges are left (runtime/crash-guard.ts with a fake send and
 * isolation: the logic only; test/kafka/daemon-produce-crash-loop.test.ts runs a real daemon whose native
 * producer crashes). A block stays journaled until its outputs are written; each suspect record's output
 * goes alone, its offset journaled ahead; sends do not overlap; an output poison is dead-lettered without
 * its output and written avoiding native code; refusals come back at their positions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PoisonSuspectedError, RecordRejectedError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord, OutboundRecord } from '../pipeline/record.js';
import type { ModelBindings } from '../pipeline/route/bindings.js';
import { CrashGuard } from '../runtime/crash-guard.js';
import type { Isolated } from '../runtime/poison-isolation.js';
import type { JournalContent } from '../streams/runtime/crash-history.js';
import { CrashJournal, type CrashJournalOptions } from '../streams/runtime/crash-journal.js';
import type { RejectedRecord, SendOptions } from '../streams/types.js';

const bindings = { generation: 0, steps: [] } as unknown as ModelBindings;
const running = { generation: 0, describe: () => [] };

function block(from: number, to: number): InboundRecord[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    topic: 't', partition: 0, offset: from + i, key: null, value: Buffer.from(`in-${from + i}`), headers: [], timestamp: 0,
  }));
}
const output = (r: InboundRecord): OutboundRecord => ({ topic: 'out', key: null, value: Buffer.from(String(r.offset)), headers: [] });
const decided = (r: InboundRecord): EncodedOutcome => ({ kind: 'decision', output: output(r), label: 'approve' });
const isolation = {
  isolate: (records: readonly InboundRecord[]): Promise<Isolated> => Promise.resolve({ encoded: records.map(decided), poison: [], children: 1 }),
  close: (): Promise<void> => Promise.resolve(),
};
const run = (records: readonly InboundRecord[]): Promise<EncodedOutcome[]> => Promise.resolve(records.map(decided));

/** A journal whose two previous runs crashed with offsets 10..19 of partition 0 in flight: suspect 10..(19 + margin). */
function suspectJournal(dir: string): { journal: CrashJournal; options: CrashJournalOptions } {
  const options: CrashJournalOptions = { dir, groupId: 'g', pipeline: 'p', threshold: 2, margin: 10, logger: silentLogger, wallClock: () => 1_000, pid: process.pid };
  CrashJournal.open(options)!.handing(block(10, 19), running);
  CrashJournal.open(options)!.handing(block(10, 19), running);
  const journal = CrashJournal.open(options)!;
  assert.deepEqual(journal.suspects.map((s) => [s.from, s.to]), [[10, 29]]);
  return { journal, options };
}

interface Round { readonly offsets: string[]; readonly options: SendOptions | undefined; readonly producing: unknown }

test('while a suspect range is left, each suspect record\'s output goes alone, journaled ahead; the others go together, one send at a time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-guard-produce-'));
  const { journal } = suspectJournal(dir);
  const guard = new CrashGuard({ journal, isolation, steps: [], pipeline: 'p', deadLetterTopic: 'dlq', logger: silentLogger });
  const rounds: Round[] = [];
  let open = 0;
  let overlapped = false;
  const send = async (records: readonly OutboundRecord[], options?: SendOptions): Promise<readonly RejectedRecord[]> => {
    overlapped ||= open > 0;
    open++;
    const producing = (JSON.parse(readFileSync(journal.path, 'utf8')) as JournalContent).run.producing;
    rounds.push({ offsets: records.map((r) => String(r.value)), options, producing });
    await new Promise((resolve) => setImmediate(resolve));
    open--;
    // Offset 12's decision is refused by the broker: reported at its position in the block.
    const at = records.findIndex((r) => String(r.value) === '12');
    return at < 0 ? [] : [{ index: at, error: new RecordRejectedError('too large', { details: { kafkaError: 'MESSAGE_TOO_LARGE' } }) }];
  };
  const b = block(7, 12);
  const encoded = await guard.process(b, undefined, bindings, run);
  const [rejected, other] = await Promise.all([
    guard.send(b, encoded.map((e) => e.output), send),
    guard.send(block(40, 41), block(40, 41).map(output), send),
  ]);
  assert.deepEqual(rounds.map((r) => [r.offsets, r.producing]), [
    [['7', '8', '9'], undefined],
    [['10'], { topic: 't', partition: 0, offset: 10 }],
    [['11'], { topic: 't', partition: 0, offset: 11 }],
    [['12'], { topic: 't', partition: 0, offset: 12 }],
    [['40', '41'], undefined],
  ]);
  assert.equal(overlapped, false, 'no send overlaps another while suspects are left');
  assert.deepEqual(rejected.map((r) => r.index), [5], 'the refusal at its position in the block');
  assert.deepEqual(other, []);
  assert.equal((JSON.parse(readFileSync(journal.path, 'utf8')) as JournalContent).run.producing, undefined, 'nothing named once the sends are over');

  // Written: the block leaves the journal's range at its next write.
  guard.written(b);
  journal.handing(block(100, 101), running);
  assert.deepEqual((JSON.parse(readFileSync(journal.path, 'utf8')) as JournalContent).run.inflight.map((r) => [r.from, r.to]), [[100, 111]]);
  await guard.close();
});

test('an output poison is dead-lettered without its output, byte for byte, and its dead letter avoids native code; without suspects a send goes straight through', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-guard-produce-'));
  const { journal, options } = suspectJournal(dir);
  // The run crashes producing offset 11 alone.
  journal.producing({ topic: 't', partition: 0, offset: 11 });
  const next = CrashJournal.open(options)!;
  assert.deepEqual(next.suspects.map((s) => [s.from, s.to, s.outputPoison]), [[10, 11, [11]]], 'the range ends at it');
  const isolated: number[] = [];
  const guard = new CrashGuard({
    journal: next, steps: [], pipeline: 'p', deadLetterTopic: 'dlq', logger: silentLogger,
    isolation: { ...isolation, isolate: (records) => { isolated.push(...records.map((r) => r.offset)); return isolation.isolate(records); } },
  });
  const b = block(10, 13);
  const encoded = await guard.process(b, undefined, bindings, run);
  assert.deepEqual(isolated, [10], 'the output poison goes to no child');
  assert.deepEqual(encoded.map((e) => e.label), ['approve', PoisonSuspectedError.code, 'approve', 'approve']);
  const dead = encoded[1]!.output;
  assert.equal(dead.topic, 'dlq');
  assert.deepEqual(dead.value, b[1]!.value, 'the input\'s bytes');
  assert.match(String(dead.headers.find((h) => h.key === HEADER.errorMessage)?.value), /produced alone/);
  const rounds: Array<[string[], SendOptions | undefined]> = [];
  const send = (records: readonly OutboundRecord[], o?: SendOptions): Promise<readonly RejectedRecord[]> => {
    rounds.push([records.map((r) => r.topic), o]);
    return Promise.resolve([]);
  };
  await guard.send(b, encoded.map((e) => e.output), send);
  assert.deepEqual(rounds, [[['out'], undefined], [['dlq'], { avoidNative: true }], [['out', 'out'], undefined]]);
  guard.committed([{ topic: 't', partition: 0, offset: 12 }]);
  assert.deepEqual(next.suspects, []);
  rounds.length = 0;
  await guard.send(b, encoded.map((e) => e.output), send);
  assert.deepEqual(rounds.map(([t]) => t.length), [4], 'no suspect left: one send');
  await guard.close();
});
