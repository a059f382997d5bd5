/**
 * A supervisor, as systemd or Kubernetes would be one: starts a daemon, and starts it again whenever it
 * exits, until the group has committed the input topic to its end (or the restarts run out). The crash-loop
 * tests run their failpoint-crashed daemons under it.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { Admin } from 'kafkajs';
import { PoisonSuspectedError } from '../../../core/errors.js';
import type { MockBroker } from '../../../mock-kafka/mock-broker.js';
import { HEADER } from '../../../pipeline/encode-outcome.js';
import { account, describe as describeAccounting } from './accounting.js';
import { DaemonProcess, type Exit } from './daemon-process.js';
import { readTopic, waitForCommittedToEnd, type ReadRecord, type Topics } from './kafka-io.js';
import { lastHeader, readRaw, type RawRecord } from './kcat-raw.js';

export interface SupervisedRun {
  readonly daemon: DaemonProcess;
  /** How it ended; absent for the run still alive when the input was committed to its end. */
  exit?: Exit;
}

export interface Supervised {
  readonly runs: readonly SupervisedRun[];
  /** Every run but the last (each exited). */
  readonly crashed: readonly SupervisedRun[];
  /** The last run's daemon, alive unless it exited too. */
  readonly last: DaemonProcess;
}

export interface SuperviseOptions {
  readonly admin: Admin;
  readonly groupId: string;
  readonly inputTopic: string;
  readonly configPath: string;
  readonly env: Record<string, string>;
  /** Restarts allowed before the test fails. */
  readonly maxRestarts: number;
  /** ms until the input must be committed to its end. */
  readonly timeoutMs: number;
}

/** Runs the supervisor loop; kills every daemon left alive when the test ends (a failed assertion included). */
export async function supervise(t: TestContext, o: SuperviseOptions): Promise<Supervised> {
  const runs: SupervisedRun[] = [];
  t.after(async () => { for (const r of runs) if (r.daemon.alive) await r.daemon.kill(); });
  let done = false;
  const committedToEnd = waitForCommittedToEnd(o.admin, o.groupId, o.inputTopic, o.timeoutMs).finally(() => { done = true; });
  committedToEnd.catch(() => undefined);
  try {
    while (!done) {
      assert.ok(runs.length <= o.maxRestarts, `more than ${o.maxRestarts} restarts: ${runs.map((r) => JSON.stringify(r.exit)).join(', ')}`);
      const daemon = await DaemonProcess.start(o.configPath, `run-${runs.length}`, 60_000, o.env);
      const run: SupervisedRun = { daemon };
      runs.push(run);
      const ended = await Promise.race([daemon.exited, committedToEnd.then(() => undefined, () => undefined)]);
      if (ended !== undefined) run.exit = ended;
    }
    await committedToEnd;
  } finally {
    for (const r of runs) if (r.daemon.alive && r !== runs[runs.length - 1]) await r.daemon.kill();
  }
  t.diagnostic(`runs: ${runs.map((r) => (r.exit === undefined ? 'alive' : r.exit.signal ?? `exit ${r.exit.code}`)).join(', ')}`);
  return { runs, crashed: runs.slice(0, -1), last: runs[runs.length - 1]!.daemon };
}

/**
 * The poison's dead letter, checked byte for byte against the input (key, value, the input's headers first)
 * with POISON_SUSPECTED, `message` in its error message and its provenance; and the accounting after the
 * crash loop: nothing lost, no strays, every other event decided, the poison never. Returns the dead letter.
 */
export async function assertPoisonDeadLettered(t: TestContext, broker: MockBroker, topics: Topics, o: {
  readonly inputs: readonly ReadRecord[];
  readonly poison: { readonly partition: number; readonly offset: number };
  readonly poisonId: string;
  readonly message: RegExp;
}): Promise<RawRecord> {
  const { inputs, poison } = o;
  const [decisions, deadLetters, rawInputs, rawDead] = await Promise.all([
    readTopic(broker, topics.output), readTopic(broker, topics.dlq), readRaw(broker, topics.input), readRaw(broker, topics.dlq),
  ]);
  assert.equal(rawDead.length, 1, `one dead letter: ${JSON.stringify(deadLetters.map((d) => d.headers))}`);
  const dead = rawDead[0]!;
  const rawPoison = rawInputs.find((r) => r.partition === poison.partition && r.offset === poison.offset)!;
  assert.deepEqual(dead.key, rawPoison.key);
  assert.deepEqual(dead.value, rawPoison.value);
  assert.deepEqual(dead.headers.slice(0, Number(lastHeader(dead, HEADER.originalHeaders))), rawPoison.headers, 'the input\'s headers first, as they came');
  assert.equal(lastHeader(dead, HEADER.errorCode), PoisonSuspectedError.code);
  assert.match(lastHeader(dead, HEADER.errorMessage) ?? '', o.message);
  assert.equal(lastHeader(dead, HEADER.sourceTopic), topics.input);
  assert.equal(lastHeader(dead, HEADER.sourcePartition), String(poison.partition));
  assert.equal(lastHeader(dead, HEADER.sourceOffset), String(poison.offset));

  // Every other record decided after deduplication by event id, and the poison never decided.
  const a = account(inputs, decisions, deadLetters);
  t.diagnostic(describeAccounting(a));
  assert.equal(a.lost.length, 0, describeAccounting(a));
  assert.equal(a.strays.length, 0, describeAccounting(a));
  const decided = new Set(decisions.map((d) => d.headers[HEADER.eventId]));
  assert.equal(decided.size, inputs.length - 1, 'every other event has a decision');
  assert.ok(!decided.has(o.poisonId), 'the poison event is never decided');
  return dead;
}
