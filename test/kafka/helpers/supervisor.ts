/**
 * A supervisor, as systemd or Kubernetes would be one: starts a daemon, and starts it again whenever it
 * exits, until the group has committed the input topic to its end (or the restarts run out). The crash-loop
 * tests run their failpoint-crashed daemons under it.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { Admin } from 'kafkajs';
import { DaemonProcess, type Exit } from './daemon-process.js';
import { waitForCommittedToEnd } from './kafka-io.js';

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
