import { api } from '../api.js';
import { h, panel } from '../dom.js';
import { formatTime } from '../format.js';
import { csvLink, dataTable, pageParams } from '../table.js';
import { policyText, rateCell, reportLink, viewHeader } from './common.js';

export async function renderReports(context) {
  const foreign = context.params.get('foreign') === 'true';
  const params = context.apiParams();
  if (foreign) params.set('foreign', 'true');
  const page = await api.get(
    '/api/reports',
    pageParams(context.params, new URLSearchParams(params)),
  );
  if (!context.isCurrent()) return;
  const local = context.filters.tz === 'local';

  const columns = [
    {
      key: 'begin',
      className: 'nowrap',
      label: 'Begins',
      sort: 'begin',
      render: (row) => formatTime(row.begin, local),
    },
    { key: 'org_name', label: 'Reporter', sort: 'reporter', className: 'wrap-anywhere' },
    { key: 'report_id', label: 'Report ID', sort: 'report_id', render: reportLink },
    { key: 'domain', label: 'Domain', sort: 'domain', className: 'wrap-anywhere' },
    {
      key: 'policy',
      label: 'Policy',
      render: (row) =>
        policyText({ p: row.policy_p, sp: row.policy_sp, np: row.policy_np, pct: row.policy_pct }),
    },
    { key: 'records', label: 'Records', sort: 'records', numeric: true },
    { key: 'messages', label: 'Messages', sort: 'messages', numeric: true },
    { key: 'dmarc_fail', label: 'Failing', sort: 'dmarc_fail', numeric: true },
    {
      key: 'pass_rate',
      label: 'Pass rate',
      sort: 'pass_rate',
      render: (row) => rateCell(row.pass_rate),
    },
  ];

  const toggle = h('input', {
    type: 'checkbox',
    id: 'show-foreign',
    checked: foreign,
    on: {
      change: (event) =>
        context.setParams({ foreign: event.target.checked ? 'true' : null, page: null }),
    },
  });
  context.show(
    viewHeader(
      foreign ? 'Foreign reports' : 'Reports',
      h('label', {}, toggle, ' Reports about domains outside DOMAINS'),
      csvLink('/api/reports', pageParams(context.params, new URLSearchParams(params))),
    ),
    foreign
      ? h('p', {
          className: 'notice',
          text: 'Anyone can send a report to a rua address. These reports are about domains the team does not own and are left out of every other number.',
        })
      : null,
    panel('Reports', dataTable(page, columns, context, { caption: 'Reports' })),
  );
}
