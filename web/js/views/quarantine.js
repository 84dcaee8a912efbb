import { api } from '../api.js';
import { h, panel, toast } from '../dom.js';
import { formatBytes, formatTime } from '../format.js';
import { csvLink, dataTable, pageParams } from '../table.js';
import { isAdmin, viewHeader } from './common.js';

function describeOutcome(outcome) {
  if (outcome.status === 'done')
    return `Read: ${outcome.reportsStored} reports stored, ${outcome.reportsDuplicate} already known`;
  if (outcome.status === 'partial')
    return `Partly read: ${outcome.reportsStored} reports stored, ${outcome.errors.length} parts unreadable`;
  const first = outcome.errors?.[0];
  return `Still quarantined${first ? `: ${first.code}` : ''}`;
}

function errorList(row) {
  const errors = row.errors ?? [];
  if (errors.length <= 1)
    return h('span', { className: 'wrap-anywhere', text: row.error_message ?? '' });
  return h(
    'details',
    {},
    h('summary', {
      className: 'wrap-anywhere',
      text: `${row.error_message ?? ''} (+${errors.length - 1} more)`,
    }),
    h(
      'ul',
      {},
      errors.map((error) =>
        h('li', { className: 'wrap-anywhere', text: `${error.code}: ${error.message}` }),
      ),
    ),
  );
}

function uploadForm(context) {
  const file = h('input', { type: 'file', name: 'report', required: true });
  const form = h(
    'form',
    {
      className: 'form',
      on: {
        submit: async (event) => {
          event.preventDefault();
          const chosen = file.files?.[0];
          if (!chosen) return;
          try {
            const outcome = await api.upload(
              '/api/upload',
              await chosen.arrayBuffer(),
              new URLSearchParams({ name: chosen.name }),
            );
            toast(`${chosen.name}: ${describeOutcome(outcome)}`);
          } catch (error) {
            toast(
              `${chosen.name}: ${error.body?.outcome ? describeOutcome(error.body.outcome) : error.message}`,
            );
          }
          context.setParams({});
        },
      },
    },
    h('label', {}, 'Report file (XML, gzip, zip or e-mail)', file),
    h('button', { type: 'submit', className: 'primary', text: 'Upload' }),
  );
  return panel('Upload a report', form);
}

export async function renderQuarantine(context) {
  const params = context.apiParams();
  const page = await api.get(
    '/api/quarantine',
    pageParams(context.params, new URLSearchParams(params)),
  );
  if (!context.isCurrent()) return;
  const local = context.filters.tz === 'local';
  const admin = isAdmin(context);

  const reprocess = async (id, button) => {
    button.disabled = true;
    try {
      const outcome = await api.post(`/api/quarantine/${id}/reprocess`);
      toast(`Input ${id}: ${describeOutcome(outcome)}`);
    } catch (error) {
      toast(`Input ${id}: ${error.message}`);
    }
    context.setParams({});
  };

  const columns = [
    {
      key: 'received_at',
      className: 'nowrap',
      label: 'Received',
      sort: 'received',
      render: (row) => formatTime(row.received_at, local),
    },
    { key: 'name', label: 'Input', sort: 'name', className: 'wrap-anywhere' },
    { key: 'source', label: 'Source', sort: 'source' },
    { key: 'status', label: 'Status', sort: 'status' },
    { key: 'error_code', label: 'Error', sort: 'error_code' },
    { key: 'error_message', label: 'Message', render: errorList },
    { key: 'attempts', label: 'Attempts', sort: 'attempts', numeric: true },
    { key: 'byte_size', label: 'Size', sort: 'size', render: (row) => formatBytes(row.byte_size) },
    {
      key: 'actions',
      label: 'Actions',
      render: (row) =>
        h(
          'span',
          { className: 'toolbar' },
          admin
            ? h('button', {
                type: 'button',
                text: 'Reprocess',
                'aria-label': `Reprocess input ${row.id}`,
                on: { click: (event) => reprocess(row.id, event.currentTarget) },
              })
            : null,
          h('a', { href: `/api/inputs/${Number(row.id)}/raw`, download: '', text: 'Download' }),
        ),
    },
  ];

  const reprocessAll = h('button', {
    type: 'button',
    text: 'Reprocess all',
    hidden: !admin,
    disabled: page.total === 0,
    on: {
      click: async (event) => {
        event.currentTarget.disabled = true;
        try {
          const result = await api.post('/api/quarantine/reprocess');
          toast(
            `Reprocessed ${result.reprocessed} inputs: ${result.done} read, ${result.partial} partly read, ${result.remaining} still quarantined`,
          );
        } catch (error) {
          toast(`Reprocessing failed: ${error.message}`);
        }
        context.setParams({});
      },
    },
  });

  context.show(
    viewHeader(
      'Quarantine',
      reprocessAll,
      csvLink('/api/quarantine', pageParams(context.params, new URLSearchParams(params))),
    ),
    h('p', {
      className: 'muted',
      text: 'Inputs that could not be read, or only in part. Their bytes are kept; reprocess them after an upgrade that reads their format.',
    }),
    panel(
      'Quarantined inputs',
      dataTable(page, columns, context, {
        caption: 'Quarantined inputs',
        empty: 'Nothing is quarantined.',
      }),
    ),
    admin ? uploadForm(context) : null,
  );
}
