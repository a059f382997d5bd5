/**
 * `verdict admin <status|models|promote|rollback|pause|resume|config>`: a thin client of a running daemon's
 * admin API (runtime/admin/). `--url` (default `VERDICT_ADMIN_URL`, else http://127.0.0.1:9465), `--token`
 * (default `VERDICT_ADMIN_TOKEN`, else the daemon's own `VERDICT_ADMIN__TOKEN`), `--json` for the raw answer. A 4xx or 5xx answer prints
 * `error <CODE>: message` on stderr and exits 1.
 */
import { Command, InvalidArgumentError } from 'commander';
import { asVerdictError, VerdictError } from '../core/errors.js';
import type { AdminConfig, AdminConsumption, AdminModelChange, AdminModels, AdminStatus } from '../runtime/admin/admin-target.js';
import { adminRequest, type AdminClientOptions } from './admin-client.js';
import { formatChange, formatConfig, formatConsumption, formatModels, formatStatus } from './admin-format.js';

export interface AdminCommandIo {
  readonly stdout?: { write(text: string): unknown };
  readonly stderr?: { write(text: string): unknown };
  readonly env?: NodeJS.ProcessEnv;
  readonly setExitCode?: (code: number) => void;
}

interface AdminOptions {
  readonly url: string;
  readonly token?: string;
  readonly json?: boolean;
}

const DEFAULT_URL = 'http://127.0.0.1:9465';

const version = (value: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('versions are positive integers');
  return n;
};

export function adminCommand(io: AdminCommandIo = {}): Command {
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  const setExitCode = io.setExitCode ?? ((code: number) => { process.exitCode = code; });

  /** One request; prints the answer (JSON or `human`) or the error, and sets the exit code. */
  const call = async <T>(options: AdminOptions, method: 'GET' | 'POST', path: string, body: unknown, human: (answer: T) => string) => {
    // The daemon's own variable last: inside the daemon's container or shell the CLI needs no other.
    const token = options.token ?? env['VERDICT_ADMIN_TOKEN'] ?? env['VERDICT_ADMIN__TOKEN'];
    const client: AdminClientOptions = { url: options.url, token };
    try {
      const answer = await adminRequest(client, method, path, body);
      if (!answer.ok) {
        err.write(`error ${answer.code}: ${answer.message} (HTTP ${answer.status})\n`);
        setExitCode(1);
        return;
      }
      out.write(options.json === true ? `${JSON.stringify(answer.body, null, 2)}\n` : human(answer.body as T));
    } catch (error) {
      const e = asVerdictError(error, VerdictError);
      err.write(`error ${e.code}: ${e.message}\n`);
      setExitCode(1);
    }
  };

  const admin = new Command('admin').description('talk to a running daemon\'s admin API (status, models, promote, rollback, pause, resume, config)');
  admin.configureOutput({ writeOut: (s) => void out.write(s), writeErr: (s) => void err.write(s) });
  const sub = (name: string, description: string) =>
    admin
      .command(name)
      .description(description)
      .option('--url <url>', 'the admin API (env VERDICT_ADMIN_URL)', env['VERDICT_ADMIN_URL'] ?? DEFAULT_URL)
      .option('--token <token>', 'the bearer token (default: env VERDICT_ADMIN_TOKEN, else VERDICT_ADMIN__TOKEN; prefer a variable, a flag shows in ps)')
      .option('--json', 'print the JSON answer');

  sub('status', 'lifecycle, assignment, lag, versions in use, circuit breakers')
    .action((o: AdminOptions) => call<AdminStatus>(o, 'GET', '/admin/status', undefined, formatStatus));
  sub('models', 'registry models and which step and role uses each')
    .action((o: AdminOptions) => call<AdminModels>(o, 'GET', '/admin/models', undefined, formatModels));
  sub('promote', 'point an alias at a version; the daemon swaps to it')
    .argument('<name>', 'model name')
    .argument('<version>', 'version number', version)
    .option('--alias <alias>', 'the alias to move (default: production)')
    .action((name: string, v: number, o: AdminOptions & { alias?: string }) =>
      call<AdminModelChange>(o, 'POST', `/admin/models/${encodeURIComponent(name)}/promote`, { version: v, ...(o.alias === undefined ? {} : { alias: o.alias }) },
        (c) => formatChange(c, 'promoted')));
  sub('rollback', 'point an alias back to its previous version; the daemon swaps to it')
    .argument('<name>', 'model name')
    .option('--alias <alias>', 'the alias to move back (default: production)')
    .action((name: string, o: AdminOptions & { alias?: string }) =>
      call<AdminModelChange>(o, 'POST', `/admin/models/${encodeURIComponent(name)}/rollback`, o.alias === undefined ? {} : { alias: o.alias },
        (c) => formatChange(c, 'rolled back')));
  sub('pause', 'stop consuming (in-flight events still finish); backpressure does not undo it')
    .action((o: AdminOptions) => call<AdminConsumption>(o, 'POST', '/admin/pause', undefined, formatConsumption));
  sub('resume', 'consume again after a pause')
    .action((o: AdminOptions) => call<AdminConsumption>(o, 'POST', '/admin/resume', undefined, formatConsumption));
  sub('config', 'the effective daemon config, secrets redacted')
    .action((o: AdminOptions) => call<AdminConfig>(o, 'GET', '/admin/config', undefined, formatConfig));
  return admin;
}
