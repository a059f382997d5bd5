import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { daemonFileSchema } from '../config/daemon-schema.js';
import {
  InternalError, ModelCircuitOpenError, ModelExecutionError, ModelInputError, ModelTimeoutError, ServerListenError, TransportError,
  VerdictError, WorkerCrashedError, asVerdictError,
} from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { RetryExhaustedError, retry } from '../core/retry.js';
import { Daemon } from '../runtime/daemon.js';
import { classifyOrtError } from '../models/onnx-session.js';
import { errorCount, setup } from './helpers/fake-runner.js';
import { samplePipelinePath } from './helpers/pipelines.js';

/** Holds a port on 127.0.0.1 until `close`. */
async function takenPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('error codes say what failed', () => {
  test('the metrics endpoint on a taken port fails with SERVER_LISTEN_FAILED naming the port', async () => {
    const held = await takenPort();
    try {
      await assert.rejects(
        startMetricsServer({ registry: createMetrics().registry, host: '127.0.0.1', port: held.port, ready: () => true }),
        (err: unknown) => {
          assert.ok(err instanceof ServerListenError);
          assert.equal(err.code, ServerListenError.code);
          assert.equal(err.code, 'SERVER_LISTEN_FAILED');
          assert.deepEqual(err.details, { host: '127.0.0.1', port: held.port, reason: 'EADDRINUSE' });
          assert.equal(err.message, `metrics endpoint cannot listen on 127.0.0.1:${held.port}: EADDRINUSE`);
          return true;
        },
      );
    } finally {
      await held.close();
    }
  });

  test('a daemon whose metrics port is taken fails to start with SERVER_LISTEN_FAILED, not a model error', async () => {
    const held = await takenPort();
    const config = daemonFileSchema.parse({
      pipeline: samplePipelinePath,
      kafka: { brokers: ['127.0.0.1:1'], groupId: 'g' },
      metrics: { host: '127.0.0.1', port: held.port },
    });
    const daemon = new Daemon({ config, pipelinePath: samplePipelinePath, overridden: [] }, silentLogger);
    try {
      await assert.rejects(daemon.start(), { code: 'SERVER_LISTEN_FAILED' });
      assert.equal(daemon.state, 'failed');
    } finally {
      await held.close();
    }
  });

  test('an error that is not Verdict\'s becomes INTERNAL_ERROR, also after crossing a thread as data', () => {
    const typed = asVerdictError(new TypeError('cannot read properties of undefined'));
    assert.ok(typed instanceof InternalError);
    assert.deepEqual([typed.code, typed.message, typed.retryable], ['INTERNAL_ERROR', 'cannot read properties of undefined', false]);
    const rebuilt = asVerdictError(structuredClone(typed.toJSON()));
    assert.ok(rebuilt instanceof InternalError);
    assert.equal(rebuilt.code, InternalError.code);
    assert.equal(asVerdictError('a string').code, 'INTERNAL_ERROR');
  });

  test('a model\'s failure stays MODEL_EXECUTION_FAILED: from onnxruntime, and from a runner that throws untyped', async () => {
    const ort = classifyOrtError(new Error("Non-zero status code returned while running Gemm node. Name:'gemm'"), 'run');
    assert.equal(ort.code, ModelExecutionError.code);
    assert.equal(ort.code, 'MODEL_EXECUTION_FAILED');
    const { actor, runner, metrics, advanceTo } = setup({ maxBatchSize: 1 });
    runner.failNext.push(new Error('session exploded') as VerdictError);
    const row = actor.infer({ x: [1, 2] });
    advanceTo(2);
    await assert.rejects(row, { code: 'MODEL_EXECUTION_FAILED', message: 'session exploded' });
    assert.equal(await errorCount(metrics, ModelExecutionError.code), 1);
  });

  test('a sink that keeps failing is a TransportError once retries run out, not a model error', async () => {
    let attempts = 0;
    const failing = retry(() => {
      attempts++;
      return Promise.reject(new TransportError('broker unreachable', { retryable: true }));
    }, { attempts: 3, initialDelayMs: 0, maxDelayMs: 0, sleep: () => Promise.resolve() });
    await assert.rejects(failing, (err: unknown) => {
      assert.ok(err instanceof RetryExhaustedError);
      assert.equal(err.code, 'TRANSPORT_FAILED');
      assert.equal(err.errors.length, 3);
      assert.equal(err.message, 'gave up after 3 attempts: broker unreachable');
      assert.equal(asVerdictError(err).code, 'TRANSPORT_FAILED');
      return true;
    });
    assert.equal(attempts, 3);
  });
});

describe('an error that crossed a thread is the same error', () => {
  /** What a worker sends and the main thread rebuilds: toJSON, a structured clone, asVerdictError. */
  const crossed = (error: VerdictError): VerdictError => asVerdictError(structuredClone(error.toJSON()));

  test('a retryable timeout keeps its class, code, retryable flag, message and details', () => {
    const rebuilt = crossed(new ModelTimeoutError('step fraud timed out after 50 ms', { details: { step: 'fraud', timeoutMs: 50 } }));
    assert.ok(rebuilt instanceof ModelTimeoutError);
    assert.deepEqual(
      [rebuilt.code, rebuilt.retryable, rebuilt.message, rebuilt.details],
      ['MODEL_TIMEOUT', true, 'step fraud timed out after 50 ms', { step: 'fraud', timeoutMs: 50 }],
    );
  });

  test('an open circuit breaker is MODEL_CIRCUIT_OPEN, retryable (left to the incomplete policy), and keeps its class', () => {
    const rebuilt = crossed(new ModelCircuitOpenError('the circuit breaker of fraud_gbt@1 is open', { details: { model: 'fraud_gbt@1' } }));
    assert.ok(rebuilt instanceof ModelCircuitOpenError);
    assert.equal(ModelCircuitOpenError.code, 'MODEL_CIRCUIT_OPEN');
    assert.deepEqual([rebuilt.code, rebuilt.retryable, rebuilt.details], ['MODEL_CIRCUIT_OPEN', true, { model: 'fraud_gbt@1' }]);
  });

  test('a retryable flag set on the instance, against its class default, survives both ways', () => {
    const notRetryable = crossed(new WorkerCrashedError('worker exited with code 1', { retryable: false }));
    assert.ok(notRetryable instanceof WorkerCrashedError);
    assert.deepEqual([notRetryable.code, notRetryable.retryable], ['MODEL_WORKER_CRASHED', false]);
    const retryable = crossed(new ModelExecutionError('session busy', { retryable: true, details: { model: 'fraud@2' } }));
    assert.ok(retryable instanceof ModelExecutionError);
    assert.deepEqual([retryable.code, retryable.retryable, retryable.details], ['MODEL_EXECUTION_FAILED', true, { model: 'fraud@2' }]);
  });

  test('the cause comes along: a Verdict cause as its class, any other error as its name and message', () => {
    const root = new TypeError('x is not a function');
    const inner = new ModelInputError('row 3 has no field amount', { details: { row: 3 }, cause: root });
    const rebuilt = crossed(new ModelExecutionError('batch failed', { cause: inner }));
    assert.ok(rebuilt instanceof ModelExecutionError);
    const cause = rebuilt.cause;
    assert.ok(cause instanceof ModelInputError);
    assert.deepEqual([cause.code, cause.retryable, cause.message, cause.details], ['MODEL_INPUT_INVALID', false, 'row 3 has no field amount', { row: 3 }]);
    assert.ok(cause.cause instanceof Error);
    assert.deepEqual([cause.cause.name, cause.cause.message], ['TypeError', 'x is not a function']);
  });

  test('the serialised form carries retryable and the cause, and nothing for a cause that is not an error', () => {
    assert.deepEqual(new TransportError('send failed', { cause: new Error('ECONNREFUSED') }).toJSON(), {
      code: 'TRANSPORT_FAILED', message: 'send failed', retryable: true, details: {},
      cause: { name: 'Error', message: 'ECONNREFUSED' },
    });
    assert.deepEqual(new InternalError('odd', { cause: 42 }).toJSON(), { code: 'INTERNAL_ERROR', message: 'odd', retryable: false, details: {} });
  });
});
