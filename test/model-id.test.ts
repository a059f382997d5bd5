/** Model ids: `name`, `name@version`, `name@alias`, and what is refused. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../core/errors.js';
import { parseModelId } from '../models/model-id.js';

void describe('model ids', () => {
  void test('parse a bare name, a version and an alias', () => {
    assert.deepEqual(parseModelId('fraud_gbt'), { name: 'fraud_gbt', selector: { kind: 'default' } });
    assert.deepEqual(parseModelId('fraud_gbt@12'), { name: 'fraud_gbt', selector: { kind: 'version', version: 12 } });
    assert.deepEqual(parseModelId('fraud_gbt@canary'), { name: 'fraud_gbt', selector: { kind: 'alias', alias: 'canary' } });
  });

  void test('reject malformed ids with a config error', () => {
    for (const id of ['', '@1', 'a@', 'a@0', 'a@01', '../x', '.hidden', 'a/b', 'a@b@c', 'a@-x']) {
      assert.throws(() => parseModelId(id), ConfigError, id);
    }
  });
});
