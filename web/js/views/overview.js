import { api } from '../api.js';
import { dailyPassFailChart } from '../charts.js';
import { h, notice, panel } from '../dom.js';
import { apiParams } from '../filters.js';
import { formatNumber, formatRate, formatTime } from '../format.js';
import { dataTable, csvLink } from '../table.js';
import {
  policyText,
  rateCell,
  rateClass,
  reportLink,
  sourceLink,
  viewHeader,
  viewLink,
} from './common.js';

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

export async function renderOverview(context) {
  const params = apiParams(context.filters);
  const summary = await api.get('/api/summary', params);
  if (!context.isCurrent()) return;
  const local = context.filters.tz === 'local';
  const { totals } = summary;

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
    panel(
      'Messages per day',
      summary.daily.labels.length
        ? dailyPassFailChart(summary.daily)
        : notice('No reports in this window.'),
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
      panel(
        'Ingestion health',
        h(
          'p',
          {},
          `Inputs: ${formatNumber(inputs.done)} read, ${formatNumber(inputs.pending)} pending, `,
          h('a', { href: '/quarantine', text: `${formatNumber(inputs.quarantined)} quarantined` }),
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
    ),
  );
}
