import { api } from '../api.js';
import { h, panel } from '../dom.js';
import { formatTime } from '../format.js';
import { csvLink, dataTable, pageParams } from '../table.js';
import { authResults, evalBadge, resultBadge, viewHeader } from './common.js';

/** Builds the columns of a record table, shared with the report detail. */
export function recordColumns(local, { withReport = true } = {}) {
  return [
    withReport
      ? {
          key: 'begin',
          className: 'nowrap',
          label: 'Begins',
          sort: 'begin',
          render: (row) => formatTime(row.begin, local),
        }
      : null,
    withReport
      ? { key: 'org_name', label: 'Reporter', sort: 'reporter', className: 'wrap-anywhere' }
      : null,
    withReport
      ? {
          key: 'report_id',
          label: 'Report',
          render: (row) =>
            h('a', {
              href: `/reports/${Number(row.report_ref)}`,
              className: 'wrap-anywhere',
              text: row.report_id,
            }),
        }
      : null,
    { key: 'source_ip', label: 'Source IP', sort: 'source_ip', className: 'wrap-anywhere' },
    { key: 'source_name', label: 'Reverse DNS', sort: 'source_name', className: 'wrap-anywhere' },
    {
      key: 'service',
      label: 'Service',
      sort: 'service',
      className: 'wrap-anywhere',
      render: (row) => row.service ?? h('span', { className: 'muted', text: 'unattributed' }),
    },
    { key: 'count', label: 'Messages', sort: 'count', numeric: true },
    {
      key: 'dmarc_pass',
      label: 'DMARC',
      sort: 'dmarc_pass',
      render: (row) => resultBadge(row.dmarc_pass),
    },
    { key: 'disposition', label: 'Disposition', sort: 'disposition' },
    {
      key: 'dkim_eval',
      label: 'DKIM',
      sort: 'dkim_eval',
      render: (row) => evalBadge(row.dkim_eval),
    },
    { key: 'spf_eval', label: 'SPF', sort: 'spf_eval', render: (row) => evalBadge(row.spf_eval) },
    { key: 'header_from', label: 'Header from', sort: 'header_from', className: 'wrap-anywhere' },
    { key: 'envelope_from', label: 'Envelope from', className: 'wrap-anywhere' },
    { key: 'dkim', label: 'DKIM results', render: (row) => authResults(row.dkim, true) },
    { key: 'spf', label: 'SPF results', render: (row) => authResults(row.spf) },
    {
      key: 'reasons',
      label: 'Overrides',
      className: 'wrap-anywhere',
      render: (row) =>
        (row.reasons ?? [])
          .map((reason) => `${reason.type}${reason.comment ? `: ${reason.comment}` : ''}`)
          .join('; '),
    },
  ].filter(Boolean);
}

export async function renderRecords(context) {
  const sourceIp = context.params.get('source_ip');
  const params = context.apiParams();
  if (sourceIp) params.set('source_ip', sourceIp);
  const page = await api.get(
    '/api/records',
    pageParams(context.params, new URLSearchParams(params)),
  );
  if (!context.isCurrent()) return;

  const service = context.filters.service;
  const scope = [sourceIp && `from ${sourceIp}`, service && `of ${service}`].filter(Boolean);
  context.show(
    viewHeader(
      scope.length ? `Records ${scope.join(' ')}` : 'Records',
      sourceIp
        ? h('button', {
            type: 'button',
            text: 'Show all sources',
            on: { click: () => context.setParams({ source_ip: null, page: null }) },
          })
        : null,
      csvLink('/api/records', pageParams(context.params, new URLSearchParams(params))),
    ),
    panel(
      'Records',
      dataTable(page, recordColumns(context.filters.tz === 'local'), context, {
        caption: 'Records',
      }),
    ),
  );
}
