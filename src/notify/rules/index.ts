/** Every alert rule, in the order the dashboard lists them. */
import type { RuleId } from '../settings.js';
import type { AlertRuleDefinition } from './context.js';
import { imapConnection, nothingIngested, quarantinedInputs, reporterSilent } from './ingestion.js';
import { policyStep, recommendationChange } from './recommendations.js';
import { servicePassRate } from './services.js';
import { newFailingSource, newPassingSource, unattributedSpike } from './sources.js';

export const RULES: { [R in RuleId]: AlertRuleDefinition<R> } = {
  'new-failing-source': newFailingSource,
  'new-passing-source': newPassingSource,
  'service-pass-rate': servicePassRate,
  'unattributed-spike': unattributedSpike,
  'policy-step': policyStep,
  'recommendation-change': recommendationChange,
  'reporter-silent': reporterSilent,
  'nothing-ingested': nothingIngested,
  'quarantined-inputs': quarantinedInputs,
  'imap-connection': imapConnection,
};
