import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { defaultPipelinePath, packageRoot } from '../core/paths.js';

const cli = resolve(packageRoot, 'dist/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('verdict CLI', () => {
  test('demo runs a short stream and accounts for every event', () => {
    const r = run('demo', '--rate', '400', '--duration', '2', '--poison-rate', '0.01');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /lost 0/);
    const produced = Number(/produced\s+(\d+)/.exec(r.stdout)?.[1]);
    const decided = Number(/decisions\s+(\d+)/.exec(r.stdout)?.[1]);
    const dead = Number(/dead letters (\d+)/.exec(r.stdout)?.[1]);
    assert.equal(produced, 800);
    assert.equal(decided + dead, produced);
    assert.ok(dead >= 1, 'poison records went to the dead-letter topic');
    assert.match(r.stdout, /fraud events .*decline/);
  });

  test('validate accepts the sample pipeline and lists its steps', () => {
    const r = run('validate', defaultPipelinePath);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok — pipeline "card-risk", 3 steps/);
    assert.match(r.stdout, /mlp: fraud_mlp@2 after gbt when/);
  });

  test('validate names each step\'s canary and shadow, with the versions they resolve to', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-cli-'));
    const file = join(dir, 'candidates.yaml');
    const text = readFileSync(defaultPipelinePath, 'utf8')
      .replace('    # canary: { model: fraud_gbt@canary, percent: 10 }', '    canary: { model: fraud_gbt@canary, percent: 12.5 }')
      .replace('    # shadow: fraud_gbt@4', '    shadow: fraud_gbt@4')
      .replace('../../models/registry', resolve(packageRoot, 'models/registry'));
    writeFileSync(file, text);
    const r = run('validate', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /gbt: fraud_gbt@3, canary fraud_gbt@canary \(fraud_gbt@4\) for 12\.5% of keys, shadow fraud_gbt@4\n/);
    assert.match(r.stdout, /topics: transactions → decisions, dead letters transactions\.dlq\n/);
    assert.match(r.stdout, /anomaly: txn_autoencoder@2\n/);
  });

  test('validate rejects a broken pipeline with a code and the config path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-cli-'));
    const file = join(dir, 'broken.yaml');
    const text = readFileSync(defaultPipelinePath, 'utf8')
      .replace('model: fraud_mlp@production', 'model: fraud_mlp@nightly')
      .replace('../../models/registry', resolve(packageRoot, 'models/registry'));
    writeFileSync(file, text);
    const r = run('validate', file);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /error CONFIG_INVALID: steps\[2\]\.model: MODEL_NOT_FOUND/);
  });

  test('models list shows the sample models and their aliases', () => {
    const r = run('models', 'list', '--registry', resolve(packageRoot, 'models/registry'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /fraud_gbt/);
    assert.match(r.stdout, /canary/);
  });
});
