import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

/**
 * The package root. Code runs compiled from dist/<dir>/, so the root is two levels above this file; data
 * that ships with the package (sample models, example pipelines) is found from here, not from the cwd.
 */
export const packageRoot: string = resolve(fileURLToPath(new URL('../../', import.meta.url)));

export const defaultPipelinePath: string = resolve(packageRoot, 'config/pipelines/card-risk.yaml');
