/**
 * Failpoints: named places where a test injects a fault into a real process (a daemon run under a supervisor,
 * its worker threads, the child processes of crash-loop isolation), after FreeBSD's fail(9) and TiKV's
 * fail-rs. A process crash cannot be simulated from outside the process, and these faults must happen in
 * whichever thread or process runs the model, so the switch is an environment variable, which worker threads
 * and child processes inherit.
 *
 * `VERDICT_FAILPOINTS` holds a JSON object, point name → fault:
 *
 *   {"model.run": {"action": "abort", "whenValue": 666}}
 *
 * - `action`: `abort` (the whole process dies with SIGABRT, as a native crash would, from any thread: Node
 *   refuses `process.abort()` in a worker thread (ERR_WORKER_UNSUPPORTED_OPERATION, which would have made the
 *   fault a mere exception there), so the process sends itself SIGABRT instead, whose default action is the
 *   same abnormal termination),
 *   `exit` (process.exit(70): in a worker thread only that thread ends), `throw` (a ModelExecutionError),
 *   `delay` (waits `ms` milliseconds, default 1000, then goes on);
 * - `whenValue` (optional): the fault fires only when one of the point's values equals it (for `model.run`:
 *   any value of any input of the batch, compared as float32); without it, it fires every time.
 *
 * Unset (production), a check costs one comparison with undefined. Nothing from config or messages selects
 * a failpoint, and the actions are fixed: no value is ever run as code. A malformed variable is a ConfigError
 * at first use, so a test that mistypes it fails loudly rather than testing nothing.
 */
import { z } from 'zod';
import { ConfigError, ModelExecutionError } from './errors.js';

/** The places a fault can be injected. */
export type FailpointName = 'model.run';

const faultSchema = z.strictObject({
  action: z.enum(['abort', 'exit', 'throw', 'delay']),
  whenValue: z.number().optional(),
  ms: z.number().int().nonnegative().optional(),
});
const specSchema = z.record(z.enum(['model.run']), faultSchema);

type Fault = z.infer<typeof faultSchema>;

/** The variable's name. */
export const FAILPOINTS_ENV = 'VERDICT_FAILPOINTS';

let parsed: Partial<Record<FailpointName, Fault>> | undefined;

function faults(): Partial<Record<FailpointName, Fault>> {
  if (parsed !== undefined) return parsed;
  const raw = process.env[FAILPOINTS_ENV];
  if (raw === undefined || raw === '') return (parsed = {});
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new ConfigError(`${FAILPOINTS_ENV} is not JSON`, { cause: error });
  }
  const result = specSchema.safeParse(json);
  if (!result.success) throw new ConfigError(`${FAILPOINTS_ENV} is not a failpoint spec: ${result.error.message}`);
  return (parsed = result.data);
}

/** Whether any failpoint is configured (the daemon logs a warning at start when one is). */
export function failpointsActive(): boolean {
  return Object.keys(faults()).length > 0;
}

/**
 * Fires the fault configured for `name`, if any, when `hasValue(whenValue)` says the point's values hold the
 * trigger value (or always, without one). Resolves when there is nothing to do; `throw` rejects with a
 * ModelExecutionError; `abort` and `exit` do not return.
 */
export async function failpoint(name: FailpointName, hasValue: (value: number) => boolean): Promise<void> {
  const fault = faults()[name];
  if (fault === undefined) return;
  if (fault.whenValue !== undefined && !hasValue(fault.whenValue)) return;
  switch (fault.action) {
    case 'abort':
      process.kill(process.pid, 'SIGABRT');
      // The signal is delivered asynchronously: nothing of this batch may run meanwhile.
      return new Promise<void>(() => undefined);
    case 'exit':
      process.exit(70);
      break;
    case 'throw':
      throw new ModelExecutionError(`failpoint ${name}: injected failure`, { details: { failpoint: name } });
    case 'delay':
      // A real wait, not the injected clock: the fault is a slow model as the process sees it.
      await new Promise<void>((resolve) => setTimeout(resolve, fault.ms ?? 1000));
      break;
  }
}

/** True when a typed array or list of numbers holds `value` as float32 would store it. */
export function holdsFloat32(values: ArrayLike<number | bigint | string>, value: number): boolean {
  const target = Math.fround(value);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number' ? v === target : v === BigInt(Math.trunc(value)) && Number.isInteger(value)) return true;
  }
  return false;
}
