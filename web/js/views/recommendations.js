// Recommendations grouped by domain: what to fix or publish next, the numbers behind it, and
// the DNS TXT record to copy.

import { dnsRecordBlock } from '../copy.js';
import { h, notice, panel } from '../dom.js';
import { formatNumber } from '../format.js';
import { csvLink } from '../table.js';
import {
  ANALYSIS_MISSING,
  bySeverity,
  fetchAnalysis,
  severityBadge,
  viewHeader,
  viewLink,
} from './common.js';

// Evidence keys whose values are percentages; the others count messages, days or reporters.
const PERCENT_KEYS = /rate$/;

function evidenceList(evidence) {
  return h(
    'ul',
    { className: 'evidence', 'aria-label': 'Evidence' },
    Object.entries(evidence).map(([key, value]) =>
      h('li', {
        text: `${key.replaceAll('_', ' ')}: ${formatNumber(value)}${PERCENT_KEYS.test(key) ? '%' : ''}`,
      }),
    ),
  );
}

function recommendationItem(context, row) {
  return h(
    'div',
    { className: 'recommendation', 'data-kind': row.kind },
    h(
      'p',
      {},
      severityBadge(row.severity),
      ' ',
      h('strong', { text: row.kind.replaceAll('-', ' ') }),
      row.service ? ' · ' : null,
      row.service ? viewLink(context, '/services', row.service, { service: row.service }) : null,
    ),
    h('p', { className: 'wrap-anywhere', text: row.summary }),
    evidenceList(row.evidence),
    row.dns_record ? dnsRecordBlock(row.dns_record) : null,
  );
}

export async function renderRecommendations(context) {
  const params = context.apiParams();
  const data = await fetchAnalysis('/api/recommendations', params);
  if (!context.isCurrent()) return;
  if (data === null) {
    context.show(viewHeader('Recommendations'), notice(ANALYSIS_MISSING));
    return;
  }

  const byDomain = new Map();
  for (const row of bySeverity(data.rows)) {
    byDomain.set(row.domain, [...(byDomain.get(row.domain) ?? []), row]);
  }
  const panels = [...byDomain.keys()].sort().map((domain) =>
    panel(
      domain,
      byDomain.get(domain).map((row) => recommendationItem(context, row)),
      h(
        'p',
        {},
        viewLink(context, '/whatif', `Try a policy for ${domain} in the what-if simulator`, {
          domain,
        }),
      ),
    ),
  );
  context.show(
    viewHeader('Recommendations', csvLink('/api/recommendations', params)),
    h('p', {
      className: 'muted',
      text: 'Records are written from the reports, which do not show rua or ruf: keep those tags from your current record when you publish.',
    }),
    panels.length ? panels : notice('Nothing to recommend in this window.'),
  );
}
