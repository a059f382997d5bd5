/**
 * `verdict models …`: list, inspect, register, promote and roll back models in a registry directory. A thin
 * layer over ModelRegistry: it parses arguments, prints tables (or JSON with --json), and turns errors into
 * `error <CODE>: message` on stderr with a non-zero exit code.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { ConfigError, ModelIntegrityError, VerdictError, asVerdictError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import { describeSpec } from '../models/manifest.js';
import { DEFAULT_MAX_MODEL_BYTES } from '../models/model-file.js';
import { parseVersion } from '../models/model-id.js';
import { ModelRegistry } from '../models/registry.js';
import type { ResolvedModel } from '../models/types.js';

export interface ModelsCommandIo {
  readonly stdout?: { write(text: string): unknown };
  readonly stderr?: { write(text: string): unknown };
  readonly logger?: Logger;
  /** Where the exit status goes; tests capture it instead of changing the test process's own. */
  readonly setExitCode?: (code: number) => void;
  /** The directory `--registry` is relative to. */
  readonly cwd?: string;
}

interface CommonOptions {
  readonly registry: string;
  readonly json?: boolean;
  readonly maxModelBytes?: string;
}

const DEFAULT_REGISTRY = 'models/registry';

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function parseMetrics(pairs: readonly string[]): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const value = Number(pair.slice(eq + 1));
    if (eq <= 0 || pair.slice(eq + 1).trim() === '' || !Number.isFinite(value)) {
      throw new ConfigError(`--metric ${pair}: expected name=number, such as auc=0.93`);
    }
    metrics[key] = value;
  }
  return metrics;
}

/** `--max-model-bytes`: a positive whole number of bytes; default the registry's (1 GiB). */
function parseMaxModelBytes(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_MODEL_BYTES;
  const bytes = /^[1-9][0-9]*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(`--max-model-bytes ${text}: expected a positive whole number of bytes`);
  return bytes;
}

const row = (label: string, value: string): string => `${label.padEnd(10)}${value}`;

function describeModel(model: ResolvedModel): string {
  const m = model.manifest;
  const metrics = Object.entries(m.metrics).map(([k, v]) => `${k}=${v}`).join(' ') || '-';
  return [
    row('model', model.ref),
    row('path', model.path),
    row('created', m.createdAt),
    row('sha256', m.sha256),
    row('about', m.description || '-'),
    row('metrics', metrics),
    ...m.inputs.map((s) => row('input', describeSpec(s))),
    ...m.outputs.map((s) => row('output', describeSpec(s))),
  ].join('\n') + '\n';
}

export function modelsCommand(io: ModelsCommandIo = {}): Command {
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  const setExitCode = io.setExitCode ?? ((code: number) => { process.exitCode = code; });
  const registryAt = (options: CommonOptions) => new ModelRegistry(resolve(io.cwd ?? process.cwd(), options.registry), io.logger ?? silentLogger, {
    maxModelBytes: parseMaxModelBytes(options.maxModelBytes),
  });
  const print = (options: CommonOptions, json: unknown, human: () => string) => {
    out.write(options.json === true ? `${JSON.stringify(json, null, 2)}\n` : human());
  };
  const fail = (error: unknown) => {
    const e = asVerdictError(error, VerdictError);
    err.write(`error ${e.code}: ${e.message}\n`);
    setExitCode(1);
  };
  // Every action runs through here, so no error escapes as an unhandled rejection or a stack trace.
  const guarded = <A extends unknown[]>(action: (...args: A) => Promise<void>) => async (...args: A) => {
    try {
      await action(...args);
    } catch (error) {
      fail(error);
    }
  };

  const models = new Command('models').description('list, inspect, register, promote and roll back models in the registry');
  // Set before subcommands are created: commander copies output settings into each one.
  models.configureOutput({ writeOut: (s) => void out.write(s), writeErr: (s) => void err.write(s) });
  const sub = (name: string, description: string) =>
    models
      .command(name)
      .description(description)
      .option('--registry <dir>', 'the registry directory', DEFAULT_REGISTRY)
      .option('--max-model-bytes <bytes>', `the largest model file read, checked before reading (default ${DEFAULT_MAX_MODEL_BYTES}: 1 GiB)`)
      .option('--json', 'print JSON instead of a table');

  sub('list', 'every model with its versions and aliases').action(
    guarded(async (options: CommonOptions) => {
      const list = await registryAt(options).list();
      print(options, list, () =>
        list.length === 0
          ? 'no models\n'
          : formatTable(
              ['NAME', 'VERSIONS', 'ALIASES'],
              list.map((m) => [
                m.name,
                m.problem === undefined ? m.versions.join(', ') || '-' : `unreadable: ${m.problem.code}`,
                Object.entries(m.aliases).map(([a, v]) => `${a}=${v}`).join(' ') || '-',
              ]),
            ),
      );
      // The others are listed; each model that could not be is an error line, and the exit status says so.
      for (const m of list) if (m.problem !== undefined) fail(asVerdictError(m.problem));
    }),
  );

  sub('inspect', 'a version\'s manifest, size, aliases and integrity')
    .argument('<id>', 'name, name@<version> or name@<alias>')
    .action(
      guarded(async (id: string, options: CommonOptions) => {
        const info = await registryAt(options).inspect(id);
        print(options, info, () => {
          const integrity = info.integrity.ok ? 'ok' : `MISMATCH (file has ${info.integrity.actualSha256})`;
          const extra = [row('size', `${info.sizeBytes} bytes`), row('aliases', info.aliases.join(' ') || '-'), row('integrity', integrity)];
          return `${describeModel(info.model)}${extra.join('\n')}\n`;
        });
        // Shown above rather than refused, so a damaged version can be examined; the status still fails scripts.
        if (!info.integrity.ok) {
          const m = info.model;
          fail(new ModelIntegrityError(`${m.path} does not match its manifest: expected sha256 ${m.manifest.sha256}, actual ${info.integrity.actualSha256}`));
        }
      }),
    );

  sub('register', 'check an ONNX file and add it as the next version')
    .argument('<name>', 'model name')
    .argument('<file>', 'the .onnx file')
    .option('--description <text>', 'what the model is for')
    .option('--metric <name=value>', 'an offline metric, repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--version <n>', 'an explicit version number (default: the next one)')
    .option('--alias <alias>', 'point this alias at the new version')
    .action(
      guarded(async (name: string, file: string, options: CommonOptions & { description?: string; metric: string[]; version?: string; alias?: string }) => {
        let version: number | undefined;
        if (options.version !== undefined) {
          version = parseVersion(options.version);
          if (version === undefined) throw new ConfigError(`--version ${options.version}: versions are positive integers`);
        }
        const model = await registryAt(options).register(name, resolve(io.cwd ?? process.cwd(), file), {
          metrics: parseMetrics(options.metric),
          ...(options.description !== undefined && { description: options.description }),
          ...(version !== undefined && { version }),
          ...(options.alias !== undefined && { alias: options.alias }),
        });
        print(options, model, () => `registered ${model.ref}${options.alias === undefined ? '' : ` as ${options.alias}`}\n${describeModel(model)}`);
      }),
    );

  sub('promote', 'point an alias at a version')
    .argument('<name>', 'model name')
    .argument('<version>', 'version number')
    .option('--alias <alias>', 'the alias to move', 'production')
    .action(
      guarded(async (name: string, versionText: string, options: CommonOptions & { alias: string }) => {
        const version = parseVersion(versionText);
        if (version === undefined) throw new ConfigError(`version ${versionText}: versions are positive integers`);
        const change = await registryAt(options).promote(name, version, options.alias);
        print(options, change, () => `${name}@${change.alias}: ${change.from ?? '-'} -> ${change.to}\n`);
      }),
    );

  sub('rollback', 'point an alias back to the version it had before its latest move')
    .argument('<name>', 'model name')
    .option('--alias <alias>', 'the alias to move back', 'production')
    .action(
      guarded(async (name: string, options: CommonOptions & { alias: string }) => {
        const change = await registryAt(options).rollback(name, options.alias);
        print(options, change, () => `${name}@${change.alias}: ${change.from ?? '-'} -> ${change.to} (rolled back)\n`);
      }),
    );

  return models;
}
