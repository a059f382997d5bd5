/**
 * The columns a feature set produces, in order: one per numeric field, one per one-hot value, one per
 * field comparison. The compiler takes widths from here and the feature mapper its column names, so the
 * two can never disagree.
 */
import type { FeatureSpec } from './pipeline-schema.js';

export function featureColumns(specs: readonly FeatureSpec[]): string[] {
  return specs.flatMap((spec) => {
    if ('oneHot' in spec) return spec.oneHot.map((v) => `${spec.field}=${v}`);
    if ('equalsField' in spec) return [`${spec.field}==${spec.equalsField}`];
    return [spec.transform === 'log1p' ? `log1p(${spec.field})` : spec.field];
  });
}
