/**
 * The columns a feature set produces, in order: one per numeric field or state value, one per one-hot
 * value, one per comparison (`country==card_country`, `state.last_country==country`). The compiler takes widths from here and the feature mapper its column names, so the
 * two can never disagree.
 */
import type { FeatureSpec } from './pipeline-schema.js';

export function featureColumns(specs: readonly FeatureSpec[]): string[] {
  return specs.flatMap((spec) => {
    if ('state' in spec) {
      if ('equalsField' in spec) return [`state.${spec.state}==${spec.equalsField}`];
      return [spec.transform === 'log1p' ? `log1p(state.${spec.state})` : `state.${spec.state}`];
    }
    if ('oneHot' in spec) return spec.oneHot.map((v) => `${spec.field}=${v}`);
    if ('equalsField' in spec) return [`${spec.field}==${spec.equalsField}`];
    return [spec.transform === 'log1p' ? `log1p(${spec.field})` : spec.field];
  });
}
