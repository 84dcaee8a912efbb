// The what-if simulator: replays the window's mail under a candidate DMARC policy and shows per
// service what would pass, be quarantined or be rejected. The form keeps domain, policy and
// dates in the URL, so that a replay can be shared.

import { dnsRecordBlock, splitDnsRecord } from '../copy.js';
import { h, notice, panel } from '../dom.js';
import { apiParams } from '../filters.js';
import { formatNumber } from '../format.js';
import { csvLink } from '../table.js';
import { ANALYSIS_MISSING, fetchAnalysis, viewHeader, viewLink } from './common.js';

/** Accepts the TXT value or a whole zone-file line, and returns the TXT value. */
function policyValue(text) {
  const trimmed = text.trim();
  return splitDnsRecord(trimmed)?.value ?? trimmed.replace(/^"(.*)"$/, '$1');
}

function whatIfForm(context, { domains, domain, policy, from, to, nextSteps }) {
  const domainSelect = h(
    'select',
    { name: 'domain', required: true },
    domains.map((name) => h('option', { value: name, text: name, selected: name === domain })),
  );
  const policyInput = h('input', {
    name: 'policy',
    value: policy,
    placeholder: 'v=DMARC1; p=quarantine',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const fromInput = h('input', { type: 'date', name: 'from', value: from ?? '' });
  const toInput = h('input', { type: 'date', name: 'to', value: to ?? '' });

  // Each domain starts from its own next step; an unknown one is left to the server.
  domainSelect.addEventListener('change', () => {
    policyInput.value = nextSteps.get(domainSelect.value) ?? '';
  });

  return h(
    'form',
    {
      className: 'form whatif-form',
      'aria-label': 'Candidate policy',
      on: {
        submit: (event) => {
          event.preventDefault();
          context.setParams({
            domain: domainSelect.value,
            policy: policyValue(policyInput.value) || null,
            range: fromInput.value || toInput.value ? 'custom' : 'all',
            from: fromInput.value || null,
            to: toInput.value || null,
          });
        },
      },
    },
    h('label', {}, 'Domain', domainSelect),
    h('label', { className: 'grow' }, 'Candidate policy (TXT value)', policyInput),
    h('label', {}, 'From', fromInput),
    h('label', {}, 'To', toInput),
    h('button', { type: 'submit', className: 'primary', text: 'Replay' }),
  );
}

const COLUMNS = [
  ['messages', 'Messages'],
  ['pass', 'Would pass'],
  ['overridden', 'Delivered by override'],
  ['delivered', 'Delivered although failing'],
  ['quarantine', 'Would be quarantined'],
  ['reject', 'Would be rejected'],
];

function countCell(row, key) {
  const value = row[key];
  const className =
    (key === 'quarantine' || key === 'reject') && value > 0 ? 'number fail' : 'number';
  return h('td', { className, text: formatNumber(value) });
}

function resultTable(result) {
  const rows = [
    ...result.services.map((row) => ({ ...row, label: row.service })),
    { ...result.unattributed, label: 'Unattributed sources' },
    { ...result.total, label: 'Total' },
  ];
  return h(
    'div',
    { className: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { className: 'visually-hidden', text: `What-if for ${result.domain}` }),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col', text: 'Service' }),
          COLUMNS.map(([, label]) => h('th', { scope: 'col', className: 'number', text: label })),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((row) =>
          h(
            'tr',
            { className: row.label === 'Total' ? 'total' : '' },
            h('th', { scope: 'row', className: 'wrap-anywhere', text: row.label }),
            COLUMNS.map(([key]) => countCell(row, key)),
          ),
        ),
      ),
    ),
  );
}

function resultPanel(context, result) {
  const notes = [...result.notes];
  if (result.other_domain_messages > 0) {
    notes.push(
      `${formatNumber(result.other_domain_messages)} messages with another header From domain were not replayed.`,
    );
  }
  return panel(
    result.domain,
    h(
      'p',
      { className: 'wrap-anywhere' },
      'Published now: ',
      h('code', { text: result.current_policy ?? 'unknown' }),
      `. Replayed over ${result.from ?? 'all days'} to ${result.to ?? 'today'} (UTC days).`,
    ),
    h('p', {}, 'Candidate record:'),
    dnsRecordBlock(result.policy),
    resultTable(result),
    notes.length
      ? h(
          'ul',
          { className: 'muted', 'aria-label': 'Notes' },
          notes.map((note) => h('li', { text: note })),
        )
      : null,
    h(
      'p',
      {},
      viewLink(context, '/services', `Services of ${result.domain}`, { domain: result.domain }),
    ),
  );
}

export async function renderWhatIf(context) {
  const policy = context.params.get('policy') ?? '';
  const params = apiParams(context.filters, ['dates', 'domain']);
  if (policy) params.set('policy', policy);

  let data;
  let failure = null;
  try {
    data = await fetchAnalysis('/api/whatif', params);
  } catch (error) {
    if (error.status !== 400) throw error;
    failure = error;
  }
  if (!context.isCurrent()) return;
  if (data === null) {
    context.show(viewHeader('What-if'), notice(ANALYSIS_MISSING));
    return;
  }

  const results = data?.results ?? [];
  const nextSteps = new Map(
    results.map((result) => [result.domain, splitDnsRecord(result.policy)?.value ?? '']),
  );
  const domains = [...new Set([...(context.filterOptions.domains ?? []), ...nextSteps.keys()])];
  const domain = context.filters.domain || results[0]?.domain || domains[0] || '';
  const form = whatIfForm(context, {
    domains: domains.includes(domain) || !domain ? domains : [domain, ...domains],
    domain,
    policy: policy || nextSteps.get(domain) || '',
    from: data?.filter.from ?? (context.filters.from || null),
    to: data?.filter.to ?? (context.filters.to || null),
    nextSteps,
  });

  context.show(
    viewHeader('What-if', data ? csvLink('/api/whatif', params) : null),
    h('p', {
      className: 'muted',
      text: 'Replays the stored reports under a candidate policy. Without a policy, each domain replays the next step from its published policy.',
    }),
    panel(
      'Candidate policy',
      form,
      failure ? h('p', { className: 'error-message', role: 'alert', text: failure.message }) : null,
    ),
    results.length
      ? results.map((result) => resultPanel(context, result))
      : failure
        ? null
        : notice('No domain with reports in this window.'),
  );
}
