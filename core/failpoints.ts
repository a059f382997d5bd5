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
 *   {"kafka.produce": {"action": "abort", "whenBytes": "evt-000117"}}
 *
 * The points: `model.run` (every thread and child process that runs a model batch, models/onnx-session.ts),
 * `kafka.produce` (the librdkafka producer, right before it hands one record to the native produce(), where
 * a native crash on a record would happen: streams/kafka/librdkafka-producer.ts).
 *
 * - `action`: `abort` (the whole process dies with SIGABRT, as a native crash would, from any thread: Node
 *   refuses `process.abort()` in a worker thread (ERR_WORKER_UNSUPPORTED_OPERATION, which would have made the
 *   fault a mere exception there), so the process sends itself SIGABRT instead, whose default action is the
 *   same abnormal termination),
 *   `exit` (process.exit(70): in a worker thread only that thread ends), `throw` (`model.run`: a
 *   ModelExecutionError; `kafka.produce`: a retryable TransportError, the round fails), `delay` (waits `ms`
 *   milliseconds, default 1000, then goes on);
 * - the trigger (optional; without it, the fault fires every time): `model.run` takes `whenValue`, a number:
 *   it fires when any value of any input of the batch equals it, compared as float32; `kafka.produce` takes
 *   `whenBytes`, a string: it fires when the record's value holds its UTF-8 bytes.
 *
 * Unset (production), a check costs one comparison with undefined. Nothing from config or messages selects
 * a failpoint, and the actions are fixed: no value is ever run as code. A malformed variable is a ConfigError
 * at first use, so a test that mistypes it fails loudly rather than testing nothing.
 */
import { z } from 'zod';
import { ConfigError, ModelExecutionError, TransportError } from './errors.js';

const action = z.enum(['abort', 'exit', 'throw', 'delay']);
const ms = z.number().int().nonnegative().optional();
const specSchema = z.strictObject({
  'model.run': z.strictObject({ action, whenValue: z.number().optional(), ms }).optional(),
  'kafka.produce': z.strictObject({ action, whenBytes: z.string().min(1).optional(), ms }).optional(),
});
type Spec = z.infer<typeof specSchema>;

/** The places a fault can be injected. */
export type FailpointName = keyof Spec;

/** What each point's check is asked about: the trigger it holds, or not. */
interface Trigger {
  readonly 'model.run': number;
  readonly 'kafka.produce': string;
}

type Fault = NonNullable<Spec[FailpointName]>;

/** The variable's name. */
export const FAILPOINTS_ENV = 'VERDICT_FAILPOINTS';

let parsed: Spec | undefined;

function faults(): Spec {
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

/** Whether a fault is configured at `name`: a synchronous check for a hot loop, before it awaits `failpoint`. */
export function failpointArmed(name: FailpointName): boolean {
  return faults()[name] !== undefined;
}

/**
 * Fires the fault configured for `name`, if any, when `holds(trigger)` says the point's values hold the
 * configured trigger (or always, without one). Resolves when there is nothing to do; `throw` rejects (see
 * the module comment); `abort` and `exit` do not return.
 */
export async function failpoint<N extends FailpointName>(name: N, holds: (trigger: Trigger[N]) => boolean): Promise<void> {
  const fault: Fault | undefined = faults()[name];
  if (fault === undefined) return;
  const trigger = 'whenValue' in fault ? fault.whenValue : 'whenBytes' in fault ? fault.whenBytes : undefined;
  if (trigger !== undefined && !holds(trigger as Trigger[N])) return;
  switch (fault.action) {
    case 'abort':
      process.kill(process.pid, 'SIGABRT');
      // The signal is delivered asynchronously: nothing of this batch may run meanwhile.
      return new Promise<void>(() => undefined);
    case 'exit':
      process.exit(70);
      break;
    case 'throw':
      if (name === 'kafka.produce') throw new TransportError(`failpoint ${name}: injected failure`, { retryable: true, details: { failpoint: name } });
      throw new ModelExecutionError(`failpoint ${name}: injected failure`, { details: { failpoint: name } });
    case 'delay':
      // A real wait, not the injected clock: the fault is a slow model as the process sees it.
      await new Promise<void>((resolve) => setTimeout(resolve, fault.ms ?? 1000));
      break;
  }
}

/** True when a record's value (bytes, or text as UTF-8) holds the UTF-8 bytes of `text`. */
export function holdsUtf8(value: Buffer | string | null, text: string): boolean {
  return value !== null && (typeof value === 'string' ? value.includes(text) : value.includes(text, 0, 'utf8'));
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
