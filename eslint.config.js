// Lint is type-aware so it can forbid floating and misused promises, which the compiler alone cannot see.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'eslint.config.js', '.dependency-cruiser.cjs', 'models/training/**', 'mock-kafka/launcher/**', 'bench/micro/client-probe/**', 'tmp/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Nothing from config or messages runs as code (test/lint-rules.test.ts checks each form is reported).
      'no-eval': 'error',
      'no-new-func': 'error',
      // The type-aware version of no-implied-eval (the base rule is off in recommendedTypeChecked in its favour):
      // setTimeout/setInterval/setImmediate given a string, and the Function constructor under any name.
      '@typescript-eslint/no-implied-eval': 'error',
      'no-restricted-syntax': ['error',
        { selector: "ImportExpression[source.type!='Literal']", message: 'import() only a string literal: a computed specifier can load code named by config or data.' },
        { selector: "CallExpression[callee.name='Function']", message: 'Function(...) compiles a string into code.' },
        { selector: "CallExpression[callee.name='require'][arguments.0.type!='Literal']", message: 'require() only a string literal: a computed specifier can load code named by config or data.' },
        { selector: "CallExpression[callee.callee.name='createRequire'][arguments.0.type!='Literal']", message: 'require() only a string literal: a computed specifier can load code named by config or data.' },
        // new Worker(code, { eval: true }) runs a string; a child process with a shell parses its arguments as shell code.
        { selector: "Property[key.name='eval'][value.value=true]", message: 'eval: true runs a string as code (worker_threads).' },
        { selector: "Property[key.name='shell'][value.value=true]", message: 'shell: true makes a command line of the arguments; pass them to execFile or spawn without a shell.' },
      ],
      'no-restricted-imports': ['error', {
        paths: [
          { name: 'vm', message: 'vm runs strings as code.' },
          { name: 'node:vm', message: 'vm runs strings as code.' },
          // execFile, spawn and fork (no shell) are allowed: the test harness and the bench start processes.
          { name: 'child_process', importNames: ['exec', 'execSync'], message: 'exec runs a shell command line; use execFile or spawn.' },
          { name: 'node:child_process', importNames: ['exec', 'execSync'], message: 'exec runs a shell command line; use execFile or spawn.' },
        ],
      }],
    },
  },
);
