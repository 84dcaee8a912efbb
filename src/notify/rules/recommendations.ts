/**
 * Rules over the recommendations: a domain ready for the next policy step, and a
 * recommendation that appears or becomes more severe.
 */
import type { Recommendation, RecommendationKind } from '../../analyze/recommendations.js';
import { formatCount, type AlertSeverity, type Finding } from '../alert.js';
import { hasNewMembers, type AlertRuleDefinition } from './context.js';

const SEVERITY_LEVEL: Record<AlertSeverity, number> = { info: 1, warning: 2, critical: 3 };

const KIND_TITLES: Record<RecommendationKind, string> = {
  'step-up-policy': 'move to the next policy step',
  'set-subdomain-policy': 'publish sp=reject and np=reject for subdomains that send no mail',
  'strict-alignment': 'publish strict alignment (adkim=s, aspf=s)',
  'fix-service': 'fix a failing service',
  'add-to-catalog': 'add a passing unlisted sender to the catalog',
  spoofing: 'stop unattributed mail that fails DMARC',
  'wait-for-data': 'wait for more reports before the next policy step',
};

/** Lists the tags that change between policy steps, e.g. `p=quarantine pct=25`. */
function describeStep(record: string): string {
  // The record comes as `_dmarc.example.com. TXT "v=DMARC1; p=…"`: only the quoted text counts.
  const text = /"([^"]*)"/.exec(record)?.[1] ?? record;
  const tags = new Map(
    text
      .split(';')
      .map((part) => part.trim().split('='))
      .filter((pair) => pair.length === 2)
      .map(([tag, value]) => [tag.trim().toLowerCase(), value.trim()]),
  );
  return ['p', 'pct', 't']
    .filter((tag) => tags.has(tag))
    .map((tag) => `${tag}=${tags.get(tag)}`)
    .join(' ');
}

function evidenceFacts(recommendation: Recommendation): [string, string][] {
  return Object.entries(recommendation.evidence).map(([name, value]) => [
    name.replace(/_/g, ' '),
    name.includes('rate') ? `${value}%` : formatCount(value),
  ]);
}

function publishFix(recommendation: Recommendation): string {
  return recommendation.dns_record
    ? `Publish this DNS record: ${recommendation.dns_record}`
    : recommendation.summary;
}

export const policyStep: AlertRuleDefinition<'policy-step'> = {
  id: 'policy-step',
  name: 'Ready for the next policy step',
  description:
    'Every known service of a domain passes DMARC with enough reports, so the policy can move one step towards p=reject.',
  changeLabel: 'Changed',

  async evaluate(context, settings) {
    const recommendations = await context.recommendations(settings.observeDays);
    const findings: Finding[] = recommendations
      .filter((recommendation) => recommendation.kind === 'step-up-policy')
      .map((recommendation) => ({
        key: `policy-step:${recommendation.domain}`,
        rule: 'policy-step',
        domain: recommendation.domain,
        service: null,
        severity: recommendation.severity,
        title: `${recommendation.domain}: ready for the next DMARC policy step (${describeStep(recommendation.dns_record)})`,
        summary: recommendation.summary,
        facts: evidenceFacts(recommendation),
        cause: `Every known service of ${recommendation.domain} passes DMARC over the last ${settings.observeDays} days of reports.`,
        fix: publishFix(recommendation),
        link: { path: '/recommendations', params: { domain: recommendation.domain } },
        level: 0,
        // The record to publish: a different next step is news.
        members: [recommendation.dns_record],
        extraRecipients: [],
      }));
    return { findings };
  },

  isWorse(sent, finding) {
    return hasNewMembers(sent.members, finding);
  },
};

export const recommendationChange: AlertRuleDefinition<'recommendation-change'> = {
  id: 'recommendation-change',
  name: 'New recommendation',
  description:
    'A recommendation of the selected kinds appears or becomes more severe, e.g. a subdomain policy to publish.',
  changeLabel: 'Changed',

  async evaluate(context, settings) {
    const recommendations = await context.recommendations(settings.observeDays);
    const minimum = SEVERITY_LEVEL[settings.minSeverity];
    const findings: Finding[] = recommendations
      .filter((recommendation) => settings.kinds.includes(recommendation.kind))
      .filter((recommendation) => SEVERITY_LEVEL[recommendation.severity] >= minimum)
      .map((recommendation) => {
        const scope = recommendation.service ? `${recommendation.service} of ` : '';
        return {
          key: `recommendation:${recommendation.domain}:${recommendation.service || '-'}:${recommendation.kind}`,
          rule: 'recommendation-change',
          domain: recommendation.domain,
          service: recommendation.service || null,
          severity: recommendation.severity,
          title: `${scope}${recommendation.domain}: recommended to ${KIND_TITLES[recommendation.kind]}`,
          summary: recommendation.summary,
          facts: evidenceFacts(recommendation),
          cause: `The last ${settings.observeDays} days of reports support this ${recommendation.severity} recommendation.`,
          fix: publishFix(recommendation),
          link: { path: '/recommendations', params: { domain: recommendation.domain } },
          level: SEVERITY_LEVEL[recommendation.severity],
          members: recommendation.dns_record ? [recommendation.dns_record] : [],
          extraRecipients: [],
        };
      });
    return { findings };
  },

  isWorse(sent, finding) {
    return (
      (sent.level !== null && finding.level > sent.level) || hasNewMembers(sent.members, finding)
    );
  },
};
