import { api } from '../api.js';
import { panel } from '../dom.js';
import { apiParams } from '../filters.js';
import { formatTime } from '../format.js';
import { csvLink, dataTable, pageParams } from '../table.js';
import { rateCell, sourceLink, viewHeader } from './common.js';

export async function renderSources(context) {
  const params = apiParams(context.filters);
  const page = await api.get(
    '/api/sources',
    pageParams(context.params, new URLSearchParams(params)),
  );
  if (!context.isCurrent()) return;
  const local = context.filters.tz === 'local';

  const columns = [
    {
      key: 'source_ip',
      label: 'Source IP',
      sort: 'source_ip',
      render: (row) => sourceLink(context, row.source_ip),
    },
    { key: 'messages', label: 'Messages', sort: 'messages', numeric: true },
    { key: 'dmarc_fail', label: 'Failing', sort: 'dmarc_fail', numeric: true },
    {
      key: 'pass_rate',
      label: 'Pass rate',
      sort: 'pass_rate',
      render: (row) => rateCell(row.pass_rate),
    },
    { key: 'reports', label: 'Reports', sort: 'reports', numeric: true },
    {
      key: 'domains',
      label: 'Domains',
      className: 'wrap-anywhere',
      render: (row) => row.domains.join(', '),
    },
    {
      key: 'first_seen',
      className: 'nowrap',
      label: 'First seen',
      sort: 'first_seen',
      render: (row) => formatTime(row.first_seen, local),
    },
    {
      key: 'last_seen',
      className: 'nowrap',
      label: 'Last seen',
      sort: 'last_seen',
      render: (row) => formatTime(row.last_seen, local),
    },
  ];
  context.show(
    viewHeader(
      'Sources',
      csvLink('/api/sources', pageParams(context.params, new URLSearchParams(params))),
    ),
    panel(
      'Sending sources, failing first',
      dataTable(page, columns, context, { caption: 'Sources' }),
    ),
  );
}
