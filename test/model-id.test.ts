/** Model ids: `name`, `name@version`, `name@alias`, and what is refused. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, RegistryPathError } from '../core/errors.js';
import { parseModelId } from '../models/model-id.js';

void describe('model ids', () => {
  void test('parse a bare name, a version and an alias', () => {
    assert.deepEqual(parseModelId('fraud_gbt'), { name: 'fraud_gbt', selector: { kind: 'default' } });
    assert.deepEqual(parseModelId('fraud_gbt@12'), { name: 'fraud_gbt', selector: { kind: 'version', version: 12 } });
    assert.deepEqual(parseModelId('fraud_gbt@canary'), { name: 'fraud_gbt', selector: { kind: 'alias', alias: 'canary' } });
  });

  void test('reject malformed selectors with a config error', () => {
    for (const id of ['a@', 'a@0', 'a@01', 'a@b@c', 'a@-x', 'a@not an alias']) {
      assert.throws(() => parseModelId(id), (e: unknown) => e instanceof ConfigError && e.code === ConfigError.code, id);
    }
  });

  // A name is joined to the registry directory: anything that is not one plain directory name is a path error.
  void test('reject names and selectors that read as paths with REGISTRY_PATH_INVALID', () => {
    const paths = [
      '', '@1', '../x', '..', '.hidden', 'a/b', '/etc', '/etc/passwd', '..%2F..%2Fetc', 'a%2F..%2Fb', 'a\\b', 'x\0y',
      'fraud\u2024\u2024', '\u2024\u2024/x', 'a\uFF0Fb', 'name@../../x', 'name@..%2Fx', 'name@a/b', 'name@\0', 'x'.repeat(129),
    ];
    for (const id of paths) {
      assert.throws(() => parseModelId(id), (e: unknown) => e instanceof RegistryPathError && e.code === RegistryPathError.code, JSON.stringify(id));
    }
  });
});
