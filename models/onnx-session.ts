/**
 * ONNX sessions on one thread: the session cache and batch execution shared by the in-thread runner and the
 * inference worker (runtime/workers/inference-worker.ts). Each thread keeps its own `InferenceSession`s,
 * keyed by model path and content hash, so a model is loaded and optimised once per thread, not once per batch.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import {
  ModelExecutionError, ModelInputError, ModelIntegrityError, ModelNotFoundError, ModelSignatureError,
  VerdictError, asVerdictError,
} from '../core/errors.js';
import { parseOptions } from '../core/options.js';
import { failpoint, holdsFloat32 } from '../core/failpoints.js';
import { checkModelFileSize } from './model-file.js';
import { sessionThreadSchema, type BatchResult, type BatchTask, type SessionThreadOptions } from './runner.js';
import type { PackedTensor } from './tensors.js';
import { ELEMENT_TYPES, type ElementType } from './types.js';

interface CacheEntry {
  readonly session: Promise<InferenceSession>;
  /** Batches running on this session: an evicted session is released only once this drops to zero. */
  users: number;
  evicted: boolean;
}

/** Per-thread sessions, least recently used evicted past `maxSessions`; a file above `maxModelBytes` is never loaded. */
export class SessionCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #options: InferenceSession.SessionOptions;
  readonly #maxSessions: number;
  readonly #maxModelBytes: number;

  constructor(options: SessionThreadOptions = {}) {
    const threads = parseOptions(sessionThreadSchema, options, 'session options');
    this.#options = {
      intraOpNumThreads: threads.intraOpThreads,
      interOpNumThreads: threads.interOpThreads,
      // Sequential: one batch is a short chain of ops; parallel branches would fight the pool for 2 cores.
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    };
    this.#maxSessions = threads.maxSessions;
    this.#maxModelBytes = threads.maxModelBytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Runs `fn` with the session for this model, loading it on first use. */
  async use<T>(path: string, sha256: string, fn: (session: InferenceSession) => Promise<T>): Promise<T> {
    const entry = this.#acquire(`${path}#${sha256}`, path);
    entry.users++;
    try {
      return await fn(await entry.session);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) void release(entry);
    }
  }

  /**
   * Forgets the session of one model version and releases it (native memory) once no batch runs on it; a
   * no-op when it is not loaded. A later batch of the same version loads it again.
   */
  async release(path: string, sha256: string): Promise<void> {
    const key = `${path}#${sha256}`;
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    entry.evicted = true;
    if (entry.users === 0) await release(entry);
  }

  /** Whether the session of this model version is loaded (or loading). */
  has(path: string, sha256: string): boolean {
    return this.#entries.has(`${path}#${sha256}`);
  }

  async close(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map(release));
  }

  #acquire(key: string, path: string): CacheEntry {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      // Re-insert so Map order is recency order and the first key is the eviction candidate.
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit;
    }
    // The file's size is checked before onnxruntime reads it, in every thread that loads by path.
    const session = checkModelFileSize(path, this.#maxModelBytes).then(() => InferenceSession.create(path, this.#options));
    const entry: CacheEntry = { session, users: 0, evicted: false };
    // A failed load is not cached: the file may be fixed or appear, and the next batch should try again.
    entry.session.catch(() => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    });
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#maxSessions) {
      const [oldKey, old] = this.#entries.entries().next().value as [string, CacheEntry];
      this.#entries.delete(oldKey);
      old.evicted = true;
      if (old.users === 0) void release(old);
    }
    return entry;
  }
}

async function release(entry: CacheEntry): Promise<void> {
  try {
    await (await entry.session).release();
  } catch {
    // A session that failed to load has nothing to release.
  }
}

/** ONNX Runtime raises plain Errors; their messages are the only way to tell input mistakes from the rest. */
export function classifyOrtError(error: unknown, phase: 'load' | 'run'): VerdictError {
  if (error instanceof VerdictError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (phase === 'load') {
    if (/doesn't exist|no such file|ENOENT/i.test(message)) return new ModelNotFoundError(message, { cause: error });
    return new ModelIntegrityError(message, { cause: error });
  }
  if (/invalid dimensions|is missing in 'feeds'|unexpected input data type|invalid input name|invalid rank/i.test(message)) {
    return new ModelInputError(message, { cause: error });
  }
  if (/invalid output name/i.test(message)) return new ModelSignatureError(message, { cause: error });
  return asVerdictError(error, ModelExecutionError);
}

const SUPPORTED: ReadonlySet<string> = new Set<string>(ELEMENT_TYPES);

function toPacked(name: string, tensor: Tensor | undefined): PackedTensor {
  if (tensor === undefined) {
    throw new ModelSignatureError(`model returned no output '${name}'`, { details: { output: name } });
  }
  if (!SUPPORTED.has(tensor.type)) {
    throw new ModelSignatureError(`output '${name}' has unsupported element type ${tensor.type}`, {
      details: { output: name, type: tensor.type },
    });
  }
  return { name, type: tensor.type as ElementType, dims: [...tensor.dims], data: tensor.data };
}

/** Runs one batch on this thread. Throws VerdictErrors only. */
export async function executeBatch(cache: SessionCache, task: BatchTask): Promise<BatchResult> {
  const feeds: Record<string, Tensor> = {};
  for (const input of task.inputs) {
    const expected = input.dims.reduce((a, b) => a * b, 1);
    if (expected !== input.data.length) {
      throw new ModelInputError(
        `input '${input.name}' has ${input.data.length} values for dims [${input.dims.join(',')}]`,
        { details: { input: input.name } },
      );
    }
    // Wraps the (transferred) buffer as it is: no copy on the way into the runtime.
    feeds[input.name] = new Tensor(input.type, input.data, input.dims);
  }
  // Test-only fault injection (core/failpoints.ts): unset in production.
  await failpoint('model.run', (value) => task.inputs.some((input) => holdsFloat32(input.data, value)));
  let loaded = false;
  try {
    return await cache.use(task.modelPath, task.modelSha256, async (session) => {
      loaded = true;
      const results = await session.run(feeds, [...task.outputNames]);
      return { outputs: task.outputNames.map((name) => toPacked(name, results[name])) };
    });
  } catch (error) {
    throw classifyOrtError(error, loaded ? 'run' : 'load');
  }
}
