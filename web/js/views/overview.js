import { api } from '../api.js';
import { attributionChart } from '../charts.js';
import { dnsRecordBlock } from '../copy.js';
import { h, notice, panel } from '../dom.js';
import { apiParams, FILTER_SETS } from '../filters.js';
import { formatNumber, formatRate, formatTime } from '../format.js';
import { dataTable, csvLink } from '../table.js';
import {
  ANALYSIS_MISSING,
  bySeverity,
  fetchAnalysis,
  policyText,
  rateCell,
  rateClass,
  reportLink,
  severityBadge,
  sourceLink,
  viewHeader,
  viewLink,
} from './common.js';

// The overview shows this many recommendations; the Recommendations view has them all.
const TOP_RECOMMENDATIONS = 4;
// A service below this DMARC pass rate is listed as failing, the threshold recommendations use.
const PASSING_RATE = 0.98;

function kpi(label, value, className = '') {
  return h(
    'div',
    { className: 'kpi' },
    h('div', { className: `value ${className}`, text: value }),
    h('div', { className: 'label', text: label }),
  );
}

/** Renders a table without server-side paging, for the overview's short lists. */
function staticTable(rows, columns, context, caption, empty) {
  const page = {
    rows,
    total: rows.length,
    page: 1,
    pageSize: Math.max(rows.length, 1),
    sort: null,
    order: null,
  };
  const table = dataTable(page, columns, context, { caption, empty });
  table.querySelector('.pager')?.remove();
  return table;
}

/** Lists the catalog services that fail DMARC, each with its main cause and fix. */
function failingServicesPanel(context, services) {
  if (services === null) return panel('Services that fail DMARC', notice(ANALYSIS_MISSING));
  const withMail = services.rows.filter((row) => row.kind === 'service' && row.messages > 0);
  const failing = withMail
    .filter((row) => row.pass_rate < PASSING_RATE)
    .sort((a, b) => b.dmarc_fail - a.dmarc_fail);
  const items = failing.map((row) => {
    const cause = row.diagnoses[0];
    return h(
      'li',
      {},
      viewLink(context, '/services', row.service, { service: row.service }),
      ' ',
      h('span', {
        className: rateClass(row.pass_rate),
        text: `${formatRate(row.pass_rate)} pass of ${formatNumber(row.messages)} messages`,
      }),
      cause ? h('span', { className: 'fix', text: cause.summary }) : null,
      cause?.fix ? h('span', { className: 'fix muted', text: `Fix: ${cause.fix}` }) : null,
    );
  });
  return panel(
    'Services that fail DMARC',
    items.length ? h('ul', { className: 'diagnoses' }, items) : null,
    items.length === 0 && withMail.length > 0
      ? h('p', { className: 'pass', text: 'Every catalog service passes DMARC in this window.' })
      : null,
    withMail.length === 0
      ? notice('No catalog service sent mail in this window. The catalog is in Settings.')
      : null,
    h('p', {}, viewLink(context, '/services', 'All services')),
  );
}

/** Shows the most urgent recommendations, each with the DNS record to publish. */
function recommendationsPanel(context, recommendations) {
  if (recommendations === null) return panel('Open recommendations', notice(ANALYSIS_MISSING));
  const top = bySeverity(recommendations.rows).slice(0, TOP_RECOMMENDATIONS);
  return panel(
    'Open recommendations',
    top.length === 0 ? notice('Nothing to do in this window.') : null,
    top.map((row) =>
      h(
        'div',
        { className: 'recommendation' },
        h(
          'p',
          {},
          severityBadge(row.severity),
          ' ',
          h('strong', { text: row.domain }),
          ' ',
          row.summary,
        ),
        row.dns_record ? dnsRecordBlock(row.dns_record) : null,
      ),
    ),
    h(
      'p',
      {},
      viewLink(
        context,
        '/recommendations',
        `All ${formatNumber(recommendations.rows.length)} recommendations`,
      ),
    ),
  );
}

export async function renderOverview(context) {
  const params = context.apiParams();
  const analysisParams = apiParams(context.filters, FILTER_SETS.analysis);
  const [summary, services, recommendations] = await Promise.all([
    api.get('/api/summary', params),
    fetchAnalysis('/api/services', analysisParams),
    fetchAnalysis('/api/recommendations', analysisParams),
  ]);
  if (!context.isCurrent()) return;
  const local = context.filters.tz === 'local';
  const { totals } = summary;
  const series = summary.dailyByAttribution;

  context.show(
    viewHeader('Overview', csvLink('/api/summary', params, 'Messages per day (CSV)')),
    h(
      'div',
      { className: 'kpis' },
      kpi('Messages', formatNumber(totals.messages)),
      kpi('DMARC pass rate', formatRate(totals.passRate), rateClass(totals.passRate)),
      kpi('Failing messages', formatNumber(totals.fail), totals.fail > 0 ? 'fail' : ''),
      kpi('Reports', formatNumber(totals.reports)),
      kpi('Sending sources', formatNumber(totals.sources)),
      kpi(
        'Quarantined inputs',
        formatNumber(summary.health.inputs.quarantined + summary.health.inputs.partial),
      ),
    ),
    h(
      'div',
      { className: 'grid' },
      failingServicesPanel(context, services),
      recommendationsPanel(context, recommendations),
    ),
    panel(
      'Messages per day',
      h('p', {
        className: 'muted',
        text: 'Attributed: mail from a sender that a service of the catalog claims. Unattributed: everything else, including known providers outside the catalog and spoofing.',
      }),
      series.labels.length ? attributionChart(series) : notice('No reports in this window.'),
    ),
  );

  const domainColumns = [
    {
      key: 'domain',
      label: 'Domain',
      render: (row) => viewLink(context, '/reports', row.domain, { domain: row.domain }),
    },
    { key: 'policy', label: 'Published policy', render: (row) => policyText(row.policy) },
    { key: 'messages', label: 'Messages', numeric: true },
    { key: 'fail', label: 'Failing', numeric: true },
    { key: 'passRate', label: 'Pass rate', render: (row) => rateCell(row.passRate) },
  ];
  const sourceColumns = [
    { key: 'source_ip', label: 'Source', render: (row) => sourceLink(context, row.source_ip) },
    { key: 'dmarc_fail', label: 'Failing', numeric: true },
    { key: 'messages', label: 'Messages', numeric: true },
    { key: 'pass_rate', label: 'Pass rate', render: (row) => rateCell(row.pass_rate) },
    { key: 'domains', label: 'Domains', render: (row) => row.domains.join(', ') },
  ];
  const reportColumns = [
    {
      key: 'begin',
      className: 'nowrap',
      label: 'Begins',
      render: (row) => formatTime(row.begin, local),
    },
    { key: 'org_name', label: 'Reporter', className: 'wrap-anywhere' },
    { key: 'report_id', label: 'Report', render: reportLink },
    { key: 'domain', label: 'Domain' },
    { key: 'messages', label: 'Messages', numeric: true },
    { key: 'dmarc_fail', label: 'Failing', numeric: true },
  ];
  const reporterColumns = [
    { key: 'reporter_org', label: 'Reporter', className: 'wrap-anywhere' },
    { key: 'reports', label: 'Reports', numeric: true },
    {
      key: 'last_report_end',
      className: 'nowrap',
      label: 'Latest report ends',
      render: (row) => formatTime(row.last_report_end, local),
    },
    {
      key: 'last_stored_at',
      className: 'nowrap',
      label: 'Received',
      render: (row) => formatTime(row.last_stored_at, local),
    },
  ];
  const inputs = summary.health.inputs;

  context.show(
    h(
      'div',
      { className: 'grid' },
      panel(
        'Domains',
        staticTable(
          summary.domains,
          domainColumns,
          context,
          'Domains',
          'No domains in this window.',
        ),
      ),
      panel(
        'Ingestion health',
        h(
          'p',
          {},
          `Inputs: ${formatNumber(inputs.done)} read, ${formatNumber(inputs.pending)} waiting to be read, `,
          // The count covers every input, so the link opens the quarantine without a date filter.
          h('a', {
            href: '/quarantine?range=all',
            text: `${formatNumber(inputs.quarantined)} quarantined`,
          }),
          `, ${formatNumber(inputs.partial)} partly read. Latest input: ${formatTime(summary.health.lastReceivedAt, local) || 'none'}.`,
        ),
        staticTable(
          summary.health.reporters,
          reporterColumns,
          context,
          'Latest report per reporter',
          'No reports yet.',
        ),
      ),
      panel(
        'Top failing sources',
        staticTable(
          summary.topFailingSources,
          sourceColumns,
          context,
          'Top failing sources',
          'No failing sources in this window.',
        ),
        h('p', {}, viewLink(context, '/sources', 'All sources')),
      ),
      panel(
        'Latest reports',
        staticTable(
          summary.latestReports,
          reportColumns,
          context,
          'Latest reports',
          'No reports in this window.',
        ),
        h('p', {}, viewLink(context, '/reports', 'All reports')),
      ),
    ),
  );
}
