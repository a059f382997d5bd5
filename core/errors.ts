/**
 * Typed errors with stable codes.
 *
 * Every error Verdict raises extends VerdictError. A subclass declares its code once as a static field and
 * the base reads it from `new.target`, so a code is never copied by hand. `retryable` says whether trying the
 * same work again can help (a timeout can, a schema mismatch cannot).
 *
 * Errors cross worker and process boundaries as plain structured clones, which lose their prototype. The
 * `Symbol.for` brand and the `code` field survive as data, so `asVerdictError` can recognise and rebuild them.
 */

const BRAND = Symbol.for('verdict.error');

/** Machine-readable facts about one error (a field, a model ref, a port): flat, so they fit a log line and a Kafka header. */
export interface ErrorDetails {
  readonly [key: string]: string | number | boolean | undefined;
}

/**
 * The base of every error Verdict raises. `code` is stable (the class's static `code`; compare with
 * `err.code === ModelTimeoutError.code`, never a literal), and the README's error table lists them all.
 * Constructor options: `cause` (kept, and serialised by `toJSON`), `details` (default `{}`), `retryable`
 * (default the class's static `retryable`, false unless the class says otherwise).
 */
export class VerdictError extends Error {
  /** The stable code instances of this class carry. */
  static readonly code: string = 'VERDICT_ERROR';
  /** Whether trying the same work again can help, unless an instance says otherwise. */
  static readonly retryable: boolean = false;

  /** Stable error code, e.g. `MODEL_TIMEOUT`: what dead letters carry in `verdict-error-code` and metrics in `code`. */
  readonly code: string;
  /** Whether trying the same work again can help (a timeout can, a schema mismatch cannot). */
  readonly retryable: boolean;
  /** Machine-readable facts (a field, a model ref); `{}` when none. */
  readonly details: ErrorDetails;
  readonly [BRAND] = true;

  constructor(message: string, options: { cause?: unknown; details?: ErrorDetails; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const ctor = new.target;
    this.name = ctor.name;
    this.code = ctor.code;
    this.retryable = options.retryable ?? ctor.retryable;
    this.details = options.details ?? {};
  }

  /**
   * A plain object that survives structuredClone, JSON and Kafka headers. The cause goes along when it is an
   * error (a Verdict error in full, any other as its name and message), so a rebuilt error still says why.
   */
  toJSON(): SerializedError {
    const cause = serializeCause(this.cause, 0);
    return {
      code: this.code, message: this.message, retryable: this.retryable, details: this.details,
      ...(cause === undefined ? {} : { cause }),
    };
  }
}

/** A `VerdictError` as plain data (`toJSON()`): what crosses a thread, a log line, or a dead letter's headers. */
export interface SerializedError {
  /** `VerdictError.code`. */
  readonly code: string;
  readonly message: string;
  /** `VerdictError.retryable`. */
  readonly retryable: boolean;
  /** `VerdictError.details`. */
  readonly details: ErrorDetails;
  /** The cause, when it was an error: serialised in full if it was Verdict's, else its name and message. */
  readonly cause?: SerializedError | SerializedCause;
}

/** A cause that was not a Verdict error: what of it can cross a thread. */
export interface SerializedCause {
  readonly name: string;
  readonly message: string;
}

// A cause chain is short; the bound only keeps a self-referencing chain from recursing for ever.
const MAX_CAUSE_DEPTH = 8;

function serializeCause(cause: unknown, depth: number): SerializedError | SerializedCause | undefined {
  if (depth >= MAX_CAUSE_DEPTH) return undefined;
  if (cause instanceof VerdictError) {
    const inner = serializeCause(cause.cause, depth + 1);
    return {
      code: cause.code, message: cause.message, retryable: cause.retryable, details: cause.details,
      ...(inner === undefined ? {} : { cause: inner }),
    };
  }
  if (cause instanceof Error) return { name: cause.name, message: cause.message };
  return undefined;
}

// ---- configuration -------------------------------------------------------------------------------------
/**
 * A config that cannot run: a pipeline or daemon config that fails its schema (the message names each field
 * path), a file that cannot be read, a pipeline that does not compile (an unknown model, a bad rule), bad
 * options passed to a component.
 */
export class ConfigError extends VerdictError {
  static override readonly code: string = 'CONFIG_INVALID';
}
/** A CEL expression (rule, score, `when`) longer than `limits.maxExpressionLength` or nested deeper than its AST bound: refused at compile time. */
export class RuleTooLargeError extends ConfigError {
  static override readonly code = 'CONFIG_RULE_TOO_LARGE';
}
/** A pipeline with more steps than `limits.maxSteps`. */
export class TooManyStepsError extends ConfigError {
  static override readonly code = 'CONFIG_TOO_MANY_STEPS';
}
/** A pipeline with more feature columns (one step's, or all steps' together) than `limits.maxFeatures`. */
export class TooManyFeaturesError extends ConfigError {
  static override readonly code = 'CONFIG_TOO_MANY_FEATURES';
}
/** A pipeline with more decision rules (rules and fallback rules) than `limits.maxRules`. */
export class TooManyRulesError extends ConfigError {
  static override readonly code = 'CONFIG_TOO_MANY_RULES';
}

// ---- ingestion -----------------------------------------------------------------------------------------
/** Bytes that are not a well-formed JSON or MessagePack event. Subclasses name well-formed input that has no exact event value. */
export class DecodeError extends VerdictError {
  static override readonly code: string = 'INPUT_DECODE_FAILED';
}
/** An integer a JS number cannot hold exactly (beyond ±(2^53−1)): refused rather than rounded. */
export class IntegerRangeError extends DecodeError {
  static override readonly code = 'INPUT_INTEGER_OUT_OF_RANGE';
}
/** NaN or ±Infinity: a MessagePack float, or a JSON literal such as 1e400 that overflows a double. */
export class NonFiniteNumberError extends DecodeError {
  static override readonly code = 'INPUT_NUMBER_NOT_FINITE';
}
/** A MessagePack value with no JSON counterpart: binary, an unknown extension type, a map key that is neither string nor integer. */
export class UnsupportedValueError extends DecodeError {
  static override readonly code = 'INPUT_UNSUPPORTED_TYPE';
}
/** A decoded event that does not match the pipeline's input schema, or has no usable id or key (`details.field`). Dead-lettered. */
export class SchemaError extends VerdictError {
  static override readonly code = 'INPUT_SCHEMA_MISMATCH';
}
/** A feature or step input that cannot be built from the event (missing, not a finite number, beyond float32). Dead-lettered. */
export class FeatureError extends VerdictError {
  static override readonly code = 'INPUT_FEATURE_FAILED';
}

// ---- input limits (enforced before the work they bound; README "Limits") ------------------------------
/** A record whose value (or key, or headers) is larger than `input.limits.maxRecordBytes`; refused before decoding. Dead-lettered. */
export class RecordTooLargeError extends DecodeError {
  static override readonly code = 'INPUT_RECORD_TOO_LARGE';
}
/** A JSON or MessagePack value nested deeper than `input.limits.maxDepth` (objects and arrays). Dead-lettered. */
export class NestingTooDeepError extends DecodeError {
  static override readonly code = 'INPUT_NESTING_TOO_DEEP';
}
/** An event with more fields (all objects' keys and array items together) than `input.limits.maxFields`. Dead-lettered. */
export class TooManyFieldsError extends DecodeError {
  static override readonly code = 'INPUT_TOO_MANY_FIELDS';
}
/** A string (a value or a map key) longer than `input.limits.maxStringLength` UTF-16 code units. Dead-lettered. */
export class StringTooLongError extends DecodeError {
  static override readonly code = 'INPUT_STRING_TOO_LONG';
}

/** Per-key state could not be applied to a record (pipeline/state/). Dead-lettered. */
export class StateError extends VerdictError {
  static override readonly code: string = 'STATE_FAILED';
}
/** A record without a key in a pipeline that keeps per-key state: state is keyed by the record key. Dead-lettered. */
export class StateKeyMissingError extends StateError {
  static override readonly code = 'STATE_KEY_MISSING';
}
/** An event whose time field (`state.eventTime`) is missing or not a finite, non-negative number. Dead-lettered. */
export class StateEventTimeError extends StateError {
  static override readonly code = 'STATE_EVENT_TIME_INVALID';
}
/** A changelog record of another format version, or one that does not parse: the partition's state is not restored (the daemon fails). */
export class StateChangelogError extends StateError {
  static override readonly code = 'STATE_CHANGELOG_INVALID';
}
/** A partition's state could not be restored from its changelog: the read failed or was given up (`details.reason`), or a record is unreadable. */
export class StateRestoreError extends StateError {
  static override readonly code = 'STATE_RESTORE_FAILED';
}

// ---- models and registry -------------------------------------------------------------------------------
/** A model id (`name`, `name@version`, `name@alias`) that resolves to nothing in the registry, or a model file that is gone. */
export class ModelNotFoundError extends VerdictError {
  static override readonly code = 'MODEL_NOT_FOUND';
}
/** A model file that is missing, does not match its manifest's sha256, or is not a loadable ONNX model. */
export class ModelIntegrityError extends VerdictError {
  static override readonly code = 'MODEL_INTEGRITY';
}
/** A model whose inputs or outputs differ from its manifest (a missing output, another element type, a non-numeric dim). */
export class ModelSignatureError extends VerdictError {
  static override readonly code = 'MODEL_SIGNATURE_MISMATCH';
}
/** A model file larger than the registry's `maxModelBytes`, refused at register and at load before it is read. */
export class ModelFileTooLargeError extends VerdictError {
  static override readonly code = 'MODEL_FILE_TOO_LARGE';
}
/** A model name or version that is not a plain registry path segment, or a registry path that resolves (through `..`, an absolute path or a symlink) outside the registry directory. */
export class RegistryPathError extends VerdictError {
  static override readonly code = 'REGISTRY_PATH_INVALID';
}
/** A row the model cannot take: an input missing, the wrong length, or a value its element type cannot hold. Fails only that row. */
export class ModelInputError extends VerdictError {
  static override readonly code = 'MODEL_INPUT_INVALID';
}
/** A model produced a value rules cannot use (NaN, ±Infinity, an int64 no JS number holds exactly). */
export class ModelOutputError extends VerdictError {
  static override readonly code = 'MODEL_OUTPUT_INVALID';
}
/** The model failed while running (onnxruntime's error, or anything a runner throws untyped). */
export class ModelExecutionError extends VerdictError {
  static override readonly code = 'MODEL_EXECUTION_FAILED';
}
/** No answer within the bound: `executeModel`'s `timeoutMs`, or a pipeline step's timeout (`details.model`, `details.timeoutMs`). Retryable. */
export class ModelTimeoutError extends VerdictError {
  static override readonly code = 'MODEL_TIMEOUT';
  static override readonly retryable = true;
}
/** A worker thread died under the task (the pool replaces it). Retryable. */
export class WorkerCrashedError extends VerdictError {
  static override readonly code = 'MODEL_WORKER_CRASHED';
  static override readonly retryable = true;
}
/**
 * A record that was in flight in consecutive process crashes and, run alone in a short-lived child process,
 * killed that process, or whose output, produced alone, crashed the process (runtime crash-loop isolation).
 * Dead-lettered byte for byte with its provenance, never decided.
 */
export class PoisonSuspectedError extends VerdictError {
  static override readonly code = 'POISON_SUSPECTED';
}
/**
 * The model version's circuit breaker is open (it failed or timed out too many times in a row): the row was
 * not queued. Retryable: the model is unavailable for now, not wrong about this row, so the step is an
 * `error` that the incomplete policy decides, like a timeout (see actors/circuit-breaker.ts).
 */
export class ModelCircuitOpenError extends VerdictError {
  static override readonly code = 'MODEL_CIRCUIT_OPEN';
  static override readonly retryable = true;
}
/** A model actor's mailbox, or a worker pool's queue, is at its bound: the row was not queued. Retryable. */
export class MailboxFullError extends VerdictError {
  static override readonly code = 'ACTOR_MAILBOX_FULL';
  static override readonly retryable = true;
}
/** Work sent to a model actor, worker pool or runner that is closed, closing, or failed. */
export class ActorStoppedError extends VerdictError {
  static override readonly code = 'ACTOR_STOPPED';
}
/** The caller's AbortSignal fired before its row was dispatched: the row never ran. */
export class AbortedError extends VerdictError {
  static override readonly code = 'ACTOR_ROW_ABORTED';
}

// ---- decisions -----------------------------------------------------------------------------------------
/** A CEL expression (a step's `when`, a decision rule, the score) that failed to evaluate. */
export class RuleError extends VerdictError {
  static override readonly code: string = 'RULE_EVALUATION_FAILED';
}
/** A CEL evaluation cut off at its cost bound (`limits.maxEvaluationCost`): counted, and handled like any rule failure. */
export class RuleCostExceededError extends RuleError {
  static override readonly code = 'RULE_COST_EXCEEDED';
}

// ---- transport -----------------------------------------------------------------------------------------
/**
 * The transport failed: a broker or connection error, or a misuse of a log (an unknown topic or partition,
 * a send after close). Retryable unless the instance says not (misuses are not).
 */
export class TransportError extends VerdictError {
  static override readonly code = 'TRANSPORT_FAILED';
  static override readonly retryable = true;
}
/** A fetched record the transport adapter could not turn into an `InboundRecord`: dead-lettered as it came. */
export class RecordConversionError extends VerdictError {
  static override readonly code = 'TRANSPORT_RECORD_INVALID';
}
/**
 * The broker refused one record for what it is (Kafka's MESSAGE_TOO_LARGE, INVALID_RECORD and the like), not
 * for the connection: sending it again cannot help. `details.kafkaError` names Kafka's error.
 */
export class RecordRejectedError extends VerdictError {
  static override readonly code = 'PRODUCE_RECORD_REJECTED';
}

/** The daemon's HTTP endpoint could not listen (the port is taken, or the address is not this host's). */
export class ServerListenError extends VerdictError {
  static override readonly code = 'SERVER_LISTEN_FAILED';
}

// ---- admin API -----------------------------------------------------------------------------------------
/** The admin API is off: no `admin.token` is configured (HTTP 403). Off is never open: every /admin/* path says so. */
export class AdminDisabledError extends VerdictError {
  static override readonly code = 'ADMIN_DISABLED';
}
/** An admin request without a bearer token, or with a wrong one (HTTP 401). */
export class AdminAuthError extends VerdictError {
  static override readonly code = 'ADMIN_UNAUTHORIZED';
}
/** An admin request that cannot be served as sent: malformed JSON, a body that fails its schema, a version that does not exist (HTTP 400). */
export class AdminRequestError extends VerdictError {
  static override readonly code = 'ADMIN_BAD_REQUEST';
}
/** An admin path that names no endpoint (HTTP 404). */
export class AdminNotFoundError extends VerdictError {
  static override readonly code = 'ADMIN_NOT_FOUND';
}
/** An admin endpoint called with a method it does not serve (HTTP 405; `details.allow` lists the one it does). */
export class AdminMethodError extends VerdictError {
  static override readonly code = 'ADMIN_METHOD_NOT_ALLOWED';
}
/** An admin request body above the size bound (HTTP 413; `details.limitBytes`). */
export class AdminBodyTooLargeError extends VerdictError {
  static override readonly code = 'ADMIN_BODY_TOO_LARGE';
}
/** An admin action the daemon cannot take in its current state (HTTP 409): pausing a daemon that is not running. */
export class AdminConflictError extends VerdictError {
  static override readonly code = 'ADMIN_CONFLICT';
}

// ---- lifecycle -----------------------------------------------------------------------------------------
/**
 * A stop ran out of time (the forced-stop timer, core/lifecycle.ts): the reason the stop's AbortSignal carries,
 * so cancellable work still running in it (a sink retry's backoff) ends. What it abandoned was not committed.
 */
export class ForcedStopError extends VerdictError {
  static override readonly code = 'LIFECYCLE_FORCED_STOP';
}

// ---- anything else -------------------------------------------------------------------------------------
/**
 * Something that is not one of Verdict's typed errors: a bug, or a library failing in a way nothing maps.
 * `asVerdictError` classifies unknown errors as this, so a failure is never blamed on a model it was not.
 */
export class InternalError extends VerdictError {
  static override readonly code = 'INTERNAL_ERROR';
}

const KNOWN: ReadonlyArray<typeof VerdictError> = [
  ConfigError, DecodeError, SchemaError, FeatureError, ModelNotFoundError, ModelIntegrityError,
  ModelSignatureError, ModelInputError, ModelOutputError, ModelExecutionError, ModelTimeoutError, WorkerCrashedError,
  ModelCircuitOpenError, MailboxFullError, ActorStoppedError, AbortedError, RuleError, TransportError,
  RecordConversionError, RecordRejectedError,
  ServerListenError, InternalError,
  AdminDisabledError, AdminAuthError, AdminRequestError, AdminNotFoundError, AdminMethodError, AdminBodyTooLargeError, AdminConflictError,
  ForcedStopError,
  IntegerRangeError, NonFiniteNumberError, UnsupportedValueError,
  RecordTooLargeError, NestingTooDeepError, TooManyFieldsError, StringTooLongError,
  ModelFileTooLargeError, RegistryPathError, PoisonSuspectedError,
  RuleTooLargeError, TooManyStepsError, TooManyFeaturesError, TooManyRulesError, RuleCostExceededError,
];
const BY_CODE = new Map<string, typeof VerdictError>(KNOWN.map((c) => [c.code, c]));

/** True for a `VerdictError` of this module (branded with `Symbol.for('verdict.error')`, so also from another copy of the package). */
export function isVerdictError(value: unknown): value is VerdictError {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}

/** What arrives from another thread: only the code and message are sure to be there (older senders wrote less). */
interface Received {
  readonly code: string;
  readonly message: string;
  readonly retryable?: unknown;
  readonly details?: ErrorDetails;
  readonly cause?: unknown;
}

function looksSerialized(value: unknown): value is Received {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { code?: unknown; message?: unknown };
  return typeof v.code === 'string' && typeof v.message === 'string' && BY_CODE.has(v.code);
}

/**
 * Classifies anything thrown into a VerdictError. Walks `cause` so that a wrapped Verdict error keeps its
 * code, and rebuilds errors that arrive as structured clones from a worker thread. What is none of these
 * becomes `fallback`: InternalError unless the caller knows better (a model runner passes
 * ModelExecutionError, because whatever its session throws is the model's failure).
 */
export function asVerdictError(value: unknown, fallback: typeof VerdictError = InternalError): VerdictError {
  for (let cur: unknown = value, depth = 0; cur !== undefined && cur !== null && depth < MAX_CAUSE_DEPTH; depth++) {
    if (cur instanceof VerdictError) return cur;
    if (looksSerialized(cur)) return rebuild(cur, 0);
    cur = (cur as { cause?: unknown }).cause;
  }
  const message = value instanceof Error ? value.message : String(value);
  return new fallback(message, { cause: value });
}

/** A serialised Verdict error as its class again, with its retryable flag, details and cause. */
function rebuild(data: Received, depth: number): VerdictError {
  const Ctor = BY_CODE.get(data.code) ?? VerdictError;
  const cause = depth < MAX_CAUSE_DEPTH ? rebuildCause(data.cause, depth + 1) : undefined;
  return new Ctor(data.message, {
    details: data.details ?? {},
    ...(typeof data.retryable === 'boolean' ? { retryable: data.retryable } : {}),
    ...(cause === undefined ? {} : { cause }),
  });
}

function rebuildCause(cause: unknown, depth: number): Error | undefined {
  if (looksSerialized(cause)) return rebuild(cause, depth);
  if (typeof cause !== 'object' || cause === null) return undefined;
  const { name, message } = cause as { name?: unknown; message?: unknown };
  if (typeof message !== 'string') return undefined;
  const error = new Error(message);
  if (typeof name === 'string') error.name = name;
  return error;
}
