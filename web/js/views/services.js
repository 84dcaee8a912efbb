// Services: one card per catalog service, per provider outside the catalog, and one for
// unattributed mail. Failing ones come first, with the diagnoses of their failing mail and the
// fix for each.

import { passRateSparkline } from '../charts.js';
import { h, notice } from '../dom.js';
import { formatNumber, formatRate } from '../format.js';
import { csvLink } from '../table.js';
import {
  ANALYSIS_MISSING,
  fetchAnalysis,
  rateClass,
  serviceTitle,
  viewHeader,
  viewLink,
} from './common.js';

// The pass rate recommendations require before a stricter policy.
const PASSING_RATE = 0.98;
const KIND_ORDER = { service: 0, provider: 1, unattributed: 2 };

function needsAttention(row) {
  return row.pass_rate !== null && row.pass_rate < PASSING_RATE;
}

/** Catalog services first, failing before passing, then by volume. */
function byAttention(a, b) {
  return (
    KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
    Number(needsAttention(b)) - Number(needsAttention(a)) ||
    b.messages - a.messages
  );
}

function plural(count, noun) {
  return `${formatNumber(count)} ${noun}${count === 1 ? '' : 's'}`;
}

function stat(label, value, className = '') {
  return h(
    'div',
    {},
    h('span', { className: `value ${className}`, text: value }),
    h('span', { className: 'label', text: label }),
  );
}

function diagnosisList(row) {
  if (row.diagnoses.length === 0) return null;
  return h(
    'div',
    {},
    h('h3', { className: 'visually-hidden', text: `Why mail of ${serviceTitle(row)} fails` }),
    h(
      'ul',
      { className: 'diagnoses' },
      row.diagnoses.map((diagnosis) =>
        h(
          'li',
          { 'data-code': diagnosis.code },
          h('strong', { text: diagnosis.summary }),
          ` (${formatNumber(diagnosis.messages)} messages)`,
          diagnosis.fix ? h('span', { className: 'fix', text: `Fix: ${diagnosis.fix}` }) : null,
        ),
      ),
    ),
  );
}

function serviceCard(context, row) {
  const title = serviceTitle(row);
  const attention = needsAttention(row);
  const links = [];
  if (row.kind === 'service') {
    links.push(
      viewLink(context, '/sources', 'Sources', { service: row.service }),
      viewLink(context, '/records', 'Records', { service: row.service }),
    );
  } else {
    // Only catalog services can be filtered by; the Sources view lists the rest first.
    links.push(viewLink(context, '/sources', 'Sources, unattributed first'));
  }
  const owner = [row.team && `Team ${row.team}`, row.contact].filter(Boolean).join(' · ');
  const rules = row.rules.map((rule) => rule.rule).join('; ');

  return h(
    'article',
    {
      className: `card${attention ? ' attention' : ''}`,
      'aria-label': title,
      'data-service': row.kind === 'service' ? row.service : row.kind,
    },
    h(
      'h2',
      {},
      h('span', { className: 'wrap-anywhere', text: title }),
      h('span', {
        className: `badge ${attention ? 'fail' : 'pass'}`,
        text: attention ? 'fails DMARC' : 'passes',
      }),
    ),
    owner ? h('p', { className: 'meta wrap-anywhere', text: owner }) : null,
    rules ? h('p', { className: 'meta wrap-anywhere', text: `Recognised by: ${rules}` }) : null,
    h(
      'div',
      { className: 'stats' },
      stat('Messages', formatNumber(row.messages)),
      stat('DMARC pass', formatRate(row.pass_rate), rateClass(row.pass_rate)),
      // DMARC needs only one of the two aligned, so neither rate alone is coloured as failing.
      stat('DKIM aligned', formatRate(row.dkim_aligned_rate)),
      stat('SPF aligned', formatRate(row.spf_aligned_rate)),
    ),
    h('p', { className: 'meta', text: 'DMARC pass rate per day, 0 to 100%' }),
    passRateSparkline(row.daily, title),
    diagnosisList(row),
    h(
      'p',
      { className: 'meta' },
      `${plural(row.sources, 'source')}, ${row.domains.join(', ') || 'no domains'}. `,
      links.flatMap((link, index) => (index > 0 ? [' · ', link] : [link])),
    ),
  );
}

export async function renderServices(context) {
  const params = context.apiParams();
  const data = await fetchAnalysis('/api/services', params);
  if (!context.isCurrent()) return;
  if (data === null) {
    context.show(viewHeader('Services'), notice(ANALYSIS_MISSING));
    return;
  }

  const rows = [...data.rows].sort(byAttention);
  const failing = rows.filter((row) => row.kind === 'service' && needsAttention(row));
  const window = data.filter.from ? `${data.filter.from} to ${data.filter.to}` : 'all time';
  context.show(
    viewHeader('Services', csvLink('/api/services', params)),
    h('p', {
      className: 'muted',
      text: `${formatNumber(failing.length)} of ${formatNumber(rows.filter((row) => row.kind === 'service').length)} catalog services below ${formatRate(PASSING_RATE)} DMARC pass, ${window} (UTC days). The line shows the pass rate per day.`,
    }),
    rows.length
      ? h(
          'div',
          { className: 'cards' },
          rows.map((row) => serviceCard(context, row)),
        )
      : notice('No mail in this window.'),
  );
}
