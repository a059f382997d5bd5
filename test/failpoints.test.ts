/**
 * Failpoints (core/failpoints.ts), each in a process of its own since the variable is read once per
 * process: `abort` kills the whole process with SIGABRT from the main thread and from a worker thread (where
 * Node refuses process.abort()), only on the trigger value; `exit`, `throw` and `delay` do what they say;
 * a malformed variable is a ConfigError, and the daemon config does not read the variable as an override.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { resolveDaemonConfig } from '../config/load-daemon.js';
import { FAILPOINTS_ENV } from '../core/failpoints.js';
import { packageRoot } from '../core/paths.js';

const failpoints = pathToFileURL(resolve(packageRoot, 'dist/core/failpoints.js')).href;

/** Runs an ES module snippet in a fresh node with the failpoint spec; resolves with how it ended and its stdout. */
function run(code: string, spec: unknown): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      env: { ...process.env, [FAILPOINTS_ENV]: typeof spec === 'string' ? spec : JSON.stringify(spec) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (exitCode, signal) => done({ code: exitCode, signal, out, err }));
  });
}

const check = (value: number): string => `
  import { failpoint, holdsFloat32 } from ${JSON.stringify(failpoints)};
  try {
    await failpoint('model.run', (v) => holdsFloat32(new Float32Array([1, ${value}]), v));
    console.log('went on');
  } catch (e) { console.log('threw ' + e.code); }
`;

const checkProduce = (value: string): string => `
  import { failpoint, failpointArmed, holdsUtf8 } from ${JSON.stringify(failpoints)};
  try {
    if (failpointArmed('kafka.produce')) await failpoint('kafka.produce', (text) => holdsUtf8(Buffer.from(${JSON.stringify(value)}), text));
    console.log('went on');
  } catch (e) { console.log('threw ' + e.code + ' ' + e.retryable); }
`;

describe('failpoints', () => {
  test('abort kills the whole process with SIGABRT on the trigger value only', async () => {
    const spec = { 'model.run': { action: 'abort', whenValue: 0.123 } };
    assert.deepEqual(await run(check(0.5), spec).then((r) => [r.signal, r.out.trim()]), [null, 'went on']);
    assert.equal((await run(check(0.123), spec)).signal, 'SIGABRT');
  });

  test('abort from a worker thread kills the whole process too', async () => {
    // An eval'd worker is CommonJS: it import()s the ES module snippet from a data: URL.
    const viaImport = `
      import { Worker } from 'node:worker_threads';
      const src = 'data:text/javascript,' + encodeURIComponent(${JSON.stringify(check(0.123))});
      const w = new Worker('import(' + JSON.stringify(src) + ')', { eval: true });
      w.on('error', (e) => console.log('worker error ' + e.message));
      w.on('exit', () => console.log('worker exited; main thread alive'));
      setTimeout(() => console.log('main thread still alive'), 3000);
    `;
    const result = await run(viaImport, { 'model.run': { action: 'abort', whenValue: 0.123 } });
    assert.equal(result.signal, 'SIGABRT', `stdout: ${result.out} stderr: ${result.err}`);
    assert.doesNotMatch(result.out, /alive|worker error/);
  });

  test('exit ends the process with code 70; throw rejects with MODEL_EXECUTION_FAILED; delay goes on', async () => {
    assert.equal((await run(check(1), { 'model.run': { action: 'exit' } })).code, 70);
    assert.equal((await run(check(1), { 'model.run': { action: 'throw', whenValue: 1 } })).out.trim(), 'threw MODEL_EXECUTION_FAILED');
    assert.equal((await run(check(1), { 'model.run': { action: 'delay', ms: 10 } })).out.trim(), 'went on');
  });

  test('kafka.produce aborts on a record whose value holds the UTF-8 bytes only; throw is a retryable TRANSPORT_FAILED', async () => {
    const spec = { 'kafka.produce': { action: 'abort', whenBytes: '"eventId":"é-7"' } };
    assert.deepEqual(await run(checkProduce('{"eventId":"é-8"}'), spec).then((r) => [r.signal, r.out.trim()]), [null, 'went on']);
    assert.equal((await run(checkProduce('{"a":1,"eventId":"é-7"}'), spec)).signal, 'SIGABRT');
    assert.equal((await run(checkProduce('x'), { 'kafka.produce': { action: 'throw' } })).out.trim(), 'threw TRANSPORT_FAILED true');
    assert.equal((await run(checkProduce('x'), { 'model.run': { action: 'abort' } })).out.trim(), 'went on', 'another point is not armed here');
  });

  test('a malformed spec is a ConfigError at first use', async () => {
    assert.equal((await run(checkProduce('x'), '{"kafka.produce": {"action": "abort", "whenValue": 1}}')).out.trim(), 'threw CONFIG_INVALID false',
      'each point takes its own trigger');
    assert.equal((await run(check(1), '{"model.run": {"action": "explode"}}')).out.trim(), 'threw CONFIG_INVALID');
    assert.equal((await run(check(1), 'not json')).out.trim(), 'threw CONFIG_INVALID');
  });

  test('the variable is no daemon config override', () => {
    const loaded = resolveDaemonConfig({ pipeline: 'p.yaml', kafka: { brokers: ['k:9092'] } }, {
      source: 'test', baseDir: '/', env: { [FAILPOINTS_ENV]: '{"model.run":{"action":"abort"}}' },
    });
    assert.deepEqual(loaded.overridden, []);
  });
});
