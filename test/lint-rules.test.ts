/**
 * The lint rules that keep config and message content from running as code (eslint.config.js): ESLint's Node
 * API, with the project's own config, on small files, one form each. Every forbidden form must be reported by
 * its rule; the allowed forms (a literal `import('./x.js')`, execFile without a shell, a function to setTimeout)
 * must lint clean.
 *
 * The files go to a scratch directory under the repository's git-ignored `tmp/` with a tsconfig of their own
 * (the rules are type-aware, and TypeScript only sees files a tsconfig includes); `tmp/**` is in the config's
 * ignores, so `npm run lint` never lints them, and this test lints with ignores off.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ESLint } from 'eslint';
import { packageRoot } from '../core/paths.js';

/** name → [source, the rule that must report it (null: none may report anything)]. */
const CASES: Record<string, readonly [string, string | null]> = {
  'eval': ["export const run = (code: string): unknown => eval(code);\n", 'no-eval'],
  'indirect-eval': ["export const run = (code: string): unknown => (0, eval)(code);\n", 'no-eval'],
  'new-function': ["export const compile = (body: string): unknown => new Function(body);\n", 'no-new-func'],
  'function-call': ["export const compile = (body: string): unknown => Function(body);\n", 'no-restricted-syntax'],
  'set-timeout-string': ["export const later = (code: string): void => { setTimeout(code, 1); };\n", '@typescript-eslint/no-implied-eval'],
  'import-computed': ["export const load = async (config: { module: string }): Promise<unknown> => import(config.module);\n", 'no-restricted-syntax'],
  'import-template': ["export const load = async (name: string): Promise<unknown> => import(`./${name}.js`);\n", 'no-restricted-syntax'],
  'require-computed': [
    "import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nexport const load = (name: string): unknown => require(name);\n",
    'no-restricted-syntax',
  ],
  'create-require-inline': [
    "import { createRequire } from 'node:module';\nexport const load = (name: string): unknown => createRequire(import.meta.url)(name);\n",
    'no-restricted-syntax',
  ],
  'vm': ["import { runInNewContext } from 'node:vm';\nexport const run = (code: string): unknown => runInNewContext(code);\n", 'no-restricted-imports'],
  'vm-bare': ["import vm from 'vm';\nexport const run = (code: string): unknown => vm.runInThisContext(code);\n", 'no-restricted-imports'],
  'exec': ["import { exec } from 'node:child_process';\nexport const run = (line: string): void => { exec(line); };\n", 'no-restricted-imports'],
  'worker-eval': ["import { Worker } from 'node:worker_threads';\nexport const start = (code: string): Worker => new Worker(code, { eval: true });\n", 'no-restricted-syntax'],
  'shell': [
    "import { spawn } from 'node:child_process';\nexport const run = (arg: string): void => { spawn('ls', [arg], { shell: true }).unref(); };\n",
    'no-restricted-syntax',
  ],
  // Allowed.
  'import-literal': ["export const load = async (): Promise<unknown> => import('./x.js');\n", null],
  'exec-file': [
    "import { execFile, spawn } from 'node:child_process';\nexport const run = (arg: string): void => { execFile('ls', [arg]); spawn('ls', [arg]).unref(); };\n",
    null,
  ],
  'require-literal': ["import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nexport const load = (): unknown => require('kafkajs');\n", null],
  'set-timeout-function': ["export const later = (f: () => void): void => { setTimeout(f, 1); };\n", null],
  'parse-config': ["export const read = (text: string): unknown => JSON.parse(text);\n", null],
};

const dir = join(packageRoot, 'tmp', `lint-rules-${process.pid}`);
let results: Map<string, ESLint.LintResult>;

describe('lint: nothing from config or messages runs as code', { timeout: 120_000 }, () => {
  before(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: '../../tsconfig.json', compilerOptions: { rootDir: '.', noEmit: true }, include: ['*.ts'] }));
    writeFileSync(join(dir, 'x.ts'), 'export const x = 1;\n');
    for (const [name, [source]] of Object.entries(CASES)) writeFileSync(join(dir, `${name}.ts`), source);
    const eslint = new ESLint({ cwd: packageRoot, ignore: false });
    const linted = await eslint.lintFiles(Object.keys(CASES).map((name) => join(dir, `${name}.ts`)));
    results = new Map(linted.map((r) => [r.filePath.slice(dir.length + 1, -'.ts'.length), r]));
  });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  for (const [name, [source, rule]] of Object.entries(CASES)) {
    test(rule === null ? `allowed: ${name}` : `${name} is reported by ${rule}`, () => {
      const result = results.get(name);
      assert.ok(result !== undefined, `${name} was linted`);
      const messages = result.messages.map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
      assert.ok(result.messages.every((m) => m.fatal !== true), `${name} parses: ${messages.join('; ')}`);
      if (rule === null) assert.deepEqual(messages, [], `${name} lints clean:\n${source}`);
      else assert.ok(result.messages.some((m) => m.ruleId === rule), `${name}: ${rule} expected, got ${JSON.stringify(messages)}\n${source}`);
    });
  }
});
