/** `verdict validate <config>`: compiles a pipeline against its registry and reports the first problem. */
import { dirname, resolve } from 'node:path';
import { Command } from 'commander';
import { compilePipeline } from '../config/compile-pipeline.js';
import { loadPipelineFile } from '../config/load.js';
import { asVerdictError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { ModelRegistry } from '../models/registry.js';

export function validateCommand(): Command {
  return new Command('validate')
    .description('check a pipeline file: schema, models, step graph, CEL rules')
    .argument('<config>', 'pipeline YAML')
    .action(async (config: string) => {
      try {
        const file = await loadPipelineFile(config);
        const baseDir = dirname(resolve(config));
        const registry = new ModelRegistry(resolve(baseDir, file.models.registry), silentLogger, { maxModelBytes: file.models.maxModelBytes });
        const p = await compilePipeline(file, registry, { baseDir });
        process.stdout.write(`${config}: ok — pipeline "${p.name}", ${p.steps.length} steps\n`);
        for (const s of p.steps) {
          const deps = s.dependsOn.length > 0 ? ` after ${s.dependsOn.join(', ')}` : '';
          const when = s.when === null ? '' : ` when ${s.when}`;
          // Candidates are named with the id they follow and the version it resolves to now.
          const named = (id: string, ref: string): string => (id === ref ? ref : `${id} (${ref})`);
          const canary = s.canary === null ? '' : `, canary ${named(s.canary.modelId, s.canary.model.ref)} for ${s.canary.percent}% of keys`;
          const shadow = s.shadow === null ? '' : `, shadow ${named(s.shadow.modelId, s.shadow.model.ref)}`;
          process.stdout.write(`  ${s.id}: ${s.model.ref}${deps}${when}${canary}${shadow}\n`);
        }
        const { topic, deadLetter, shadowTopic } = p.output;
        process.stdout.write(`  topics: ${p.input.topic} → ${topic}, dead letters ${deadLetter}${shadowTopic === null ? '' : `, shadow decisions ${shadowTopic}`}\n`);
      } catch (err) {
        const code = asVerdictError(err).code;
        process.stderr.write(`error ${code}: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
