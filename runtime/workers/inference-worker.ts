/**
 * The inference worker: the task file of `PiscinaRunner`'s pool. Each task is one model batch, run on this
 * thread's sessions (models/onnx-session.ts); its output buffers go back moved, not copied. Like every pool
 * worker it answers the pool's metrics requests (worker-side.ts).
 */
import { workerData } from 'node:worker_threads';
import { ModelExecutionError } from '../../core/errors.js';
import { createMetrics } from '../../core/metrics.js';
import { SessionCache, classifyOrtError, executeBatch } from '../../models/onnx-session.js';
import type { BatchTask, PackedTensor, SessionKey, SessionThreadOptions } from '../../models/runner.js';
import type { PoolWorkerData, WorkerReply } from './protocol.js';
import { transferList } from './protocol.js';
import { answer, serveControl, serveMetrics } from './worker-side.js';

/** What `PiscinaRunner.load` / `release` broadcast to every inference worker. */
export type InferenceControl = { readonly kind: 'load' | 'release' } & SessionKey;

/** What `PiscinaRunner` starts each inference worker with. */
export type InferenceWorkerData = SessionThreadOptions & PoolWorkerData;

const data = (workerData ?? {}) as Partial<InferenceWorkerData>;
if (data.metricsChannel !== undefined) serveMetrics(data.metricsChannel, createMetrics().registry);

let threadCache: SessionCache | undefined;

// Load or release one version's session on this thread, for a version about to take traffic or unloaded.
if (data.controlChannel !== undefined) {
  serveControl(data.controlChannel, async (message) => {
    const { kind, modelPath, modelSha256 } = message as InferenceControl;
    threadCache ??= new SessionCache(data);
    if (kind === 'release') return threadCache.release(modelPath, modelSha256);
    try {
      await threadCache.use(modelPath, modelSha256, () => Promise.resolve());
    } catch (error) {
      throw classifyOrtError(error, 'load');
    }
    return null;
  });
}

/** One batch in, its outputs (in the order of `outputNames`) out; failures as typed errors, as data. */
export default function runBatchTask(task: BatchTask): Promise<WorkerReply<readonly PackedTensor[]>> {
  threadCache ??= new SessionCache(data);
  const cache = threadCache;
  return answer(async () => (await executeBatch(cache, task)).outputs, {
    transfer: (outputs) => transferList(outputs.map((o) => o.data)),
    fallback: ModelExecutionError,
  });
}
