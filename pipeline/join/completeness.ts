/**
 * The one definition of a complete join, used by the deadline join (the decision's `complete` and the
 * incomplete-join metric) and by the decision actor (the incomplete policy's reason).
 *
 * A step that was skipped by design (its `when` was false, or a dependency produced nothing) is settled: it
 * did what the config asked. Only `error` and `timeout` mean that something that should have arrived did
 * not. So, per mode:
 *   - `all` and `partial`: complete when no step failed (every step is ok or skipped). A step that failed
 *     makes the join incomplete even when others are ok: the incomplete policy decides, never the rules on
 *     their own with a model missing (a fraud model that failed must not leave the others to approve).
 *     `all` waits for every step; `partial` waits for every step or the deadline.
 *   - `any`: complete when at least one step is ok, or when no step failed (every step was skipped: there
 *     was nothing to wait for). It closes at the first ok, so the steps it did not wait for are cut short.
 */
import type { JoinMode } from '../../config/compiled.js';
import type { StepStatus } from './types.js';

/** Whether a step's status means its result should have arrived and did not. */
export function isFailedStatus(status: StepStatus): boolean {
  return status === 'error' || status === 'timeout';
}

/** Complete for `mode`, given how many steps reported ok and how many failed (error or timeout). */
export function isJoinComplete(mode: JoinMode, ok: number, failed: number): boolean {
  return mode === 'any' ? ok > 0 || failed === 0 : failed === 0;
}

/** The steps that failed (error or timeout), in step order: what an incomplete decision names. */
export function failedSteps(completeness: Readonly<Record<string, StepStatus>>): string[] {
  const failed: string[] = [];
  for (const step in completeness) if (isFailedStatus(completeness[step]!)) failed.push(step);
  return failed;
}
