/**
 * The root logger censors secret-named fields wherever a log line carries them (core/log-censor.ts):
 * checked on `createLogger`'s own output (stderr of a child process), since that is what every command uses.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { packageRoot } from '../core/paths.js';

const run = promisify(execFile);

test('secret-named fields and TLS material are censored in log lines, a record key is not', async () => {
  const log = resolve(packageRoot, 'dist/core/log.js');
  const script = `
    const { createLogger, componentLogger } = await import(${JSON.stringify(log)});
    const root = createLogger({ level: 'info' });
    root.info({ token: 'T0', password: 'P0', key: 'record-key' }, 'top');
    componentLogger(root, 'daemon').info({ config: { kafka: { sasl: { password: 'P3', username: 'u' }, ssl: { key: 'K3', cert: 'C3', ca: 'A3', passphrase: 'F3' } }, admin: { token: 'T2' } } }, 'deep');
    root.warn({ headers: { Authorization: 'Bearer B1' }, tls: { key: 'K1' }, clients: [{ sasl: { password: 'P4' } }] }, 'request');
  `;
  const { stderr } = await run(process.execPath, ['--input-type=module', '-e', script]);
  const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 3);
  for (const secret of ['T0', 'P0', 'P3', 'K3', 'C3', 'A3', 'F3', 'T2', 'Bearer B1', 'K1', 'P4']) assert.ok(!stderr.includes(`"${secret}"`), `${secret} censored: ${stderr}`);
  assert.equal(lines[0]?.['key'], 'record-key', 'a key field outside ssl/tls is kept');
  assert.deepEqual((lines[1]?.['config'] as { kafka: { sasl: unknown } }).kafka.sasl, { password: '[redacted]', username: 'u' });
  assert.equal(lines[1]?.['component'], 'daemon');
});
