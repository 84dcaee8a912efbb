// Sources: every sending address with reverse DNS and the service it is attributed to,
// unattributed and failing first. Admins add an address to a catalog service from here.

import { api } from '../api.js';
import { h, notice, panel, toast } from '../dom.js';
import { formatNumber } from '../format.js';
import { csvLink, dataTable, pageParams } from '../table.js';
import {
  ANALYSIS_MISSING,
  fetchAnalysis,
  isAdmin,
  rateCell,
  sourceLink,
  viewHeader,
  viewLink,
} from './common.js';

// Attribution runs in a background worker after a catalog change. The view polls this long for
// the new attribution, then shows the page as it is.
const ATTRIBUTION_WAIT_MS = 15_000;
const ATTRIBUTION_POLL_MS = 500;

function attributionCell(context, row) {
  if (row.service) return viewLink(context, '/services', row.service, { service: row.service });
  if (row.provider) return h('span', { text: `${row.provider} (provider, not in the catalog)` });
  return h('span', { className: 'badge fail', text: 'unattributed' });
}

function reverseDnsCell(row) {
  if (row.source_name) return h('span', { className: 'wrap-anywhere', text: row.source_name });
  if (row.rdns_state === null) return h('span', { className: 'muted', text: 'not looked up' });
  const names = row.rdns_names.length ? `: ${row.rdns_names.join(', ')}` : '';
  return h('span', { className: 'muted wrap-anywhere', text: `${row.rdns_state}${names}` });
}

/** Waits until the attribution worker has moved `ip` to `service`; false after the deadline. */
async function waitForAttribution(ip, service, params) {
  const deadline = Date.now() + ATTRIBUTION_WAIT_MS;
  const query = new URLSearchParams(params);
  query.set('service', service);
  query.set('page_size', '500');
  query.delete('page');
  while (Date.now() < deadline) {
    const page = await api.get('/api/sources/attributed', query);
    if (page.rows.some((row) => row.source_ip === ip)) return true;
    await new Promise((resolve) => setTimeout(resolve, ATTRIBUTION_POLL_MS));
  }
  return false;
}

/** Opens a dialog to choose a catalog service for `ip`, then adds the address to it. */
async function addToService(context, ip, params) {
  const catalog = await api.get('/api/catalog');
  if (catalog.services.length === 0) {
    toast('The catalog has no services yet: add one in Settings');
    return;
  }
  const select = h(
    'select',
    { name: 'service', required: true },
    catalog.services.map((service) => h('option', { value: service.name, text: service.name })),
  );
  const status = h('p', { role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', className: 'primary', text: 'Add' });
  const dialog = h('dialog', { 'aria-labelledby': 'add-source-title' });
  const close = () => {
    dialog.close();
    dialog.remove();
  };

  const form = h(
    'form',
    {
      className: 'form',
      on: {
        submit: async (event) => {
          event.preventDefault();
          submit.disabled = true;
          const service = select.value;
          try {
            const result = await api.post(
              `/api/catalog/services/${encodeURIComponent(service)}/sources`,
              { source: ip },
            );
            status.textContent = result.added
              ? `Added ${ip} to ${result.service}. Recomputing attribution…`
              : `${ip} is already in ${result.service}. Recomputing attribution…`;
            const done = await waitForAttribution(ip, result.service, params);
            toast(
              done
                ? `${ip} is now attributed to ${result.service}`
                : `${ip} was added to ${result.service}; attribution is still running`,
            );
            close();
            context.setParams({});
          } catch (error) {
            status.textContent = `Not added: ${error.message}`;
            submit.disabled = false;
          }
        },
      },
    },
    h('label', {}, 'Service', select),
    submit,
    h('button', { type: 'button', text: 'Cancel', on: { click: close } }),
  );
  dialog.append(
    h('h2', { id: 'add-source-title', text: `Add ${ip} to a service` }),
    h('p', {
      className: 'muted',
      text: 'Adds the address as an ip rule of the service in the catalog. The strongest rule, an ip range, then claims its mail.',
    }),
    form,
    status,
  );
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  select.focus();
}

export async function renderSources(context) {
  const params = context.apiParams();
  const query = pageParams(context.params, new URLSearchParams(params));
  const page = await fetchAnalysis('/api/sources/attributed', query);
  if (!context.isCurrent()) return;
  if (page === null) {
    context.show(viewHeader('Sources'), notice(ANALYSIS_MISSING));
    return;
  }
  const admin = isAdmin(context);

  const columns = [
    {
      key: 'source_ip',
      label: 'Source IP',
      sort: 'source_ip',
      render: (row) => sourceLink(context, row.source_ip),
    },
    { key: 'source_name', label: 'Reverse DNS', render: reverseDnsCell },
    { key: 'service', label: 'Service', render: (row) => attributionCell(context, row) },
    { key: 'rule', label: 'Rule', className: 'wrap-words' },
    { key: 'confidence', label: 'Confidence' },
    {
      key: 'header_from',
      label: 'Header From',
      className: 'wrap-words',
      render: (row) => row.header_from.join(', '),
    },
    { key: 'messages', label: 'Messages', sort: 'messages', numeric: true },
    { key: 'dmarc_fail', label: 'Failing', sort: 'dmarc_fail', numeric: true },
    {
      key: 'pass_rate',
      label: 'Pass rate',
      sort: 'pass_rate',
      render: (row) => rateCell(row.pass_rate),
    },
    { key: 'first_seen', label: 'First seen', className: 'nowrap' },
    { key: 'last_seen', label: 'Last seen', sort: 'last_seen', className: 'nowrap' },
    admin
      ? {
          key: 'actions',
          label: 'Actions',
          render: (row) =>
            row.source_ip
              ? h('button', {
                  type: 'button',
                  className: 'nowrap',
                  text: 'Add to service…',
                  'aria-label': `Add ${row.source_ip} to a service`,
                  on: { click: () => addToService(context, row.source_ip, params) },
                })
              : null,
        }
      : null,
  ].filter(Boolean);

  const service = context.filters.service;
  const defaultOrder = page.sort === 'attention';
  context.show(
    viewHeader(
      service ? `Sources of ${service}` : 'Sources',
      defaultOrder
        ? null
        : h('button', {
            type: 'button',
            text: 'Unattributed and failing first',
            on: { click: () => context.setParams({ sort: null, order: null, page: null }) },
          }),
      csvLink('/api/sources/attributed', query),
    ),
    panel(
      defaultOrder ? 'Sending sources, unattributed and failing first' : 'Sending sources',
      h('p', {
        className: 'muted',
        text: `${formatNumber(page.total)} source addresses, ${page.filter.from ?? 'all days'} to ${page.filter.to ?? 'today'} (UTC days). A source shows once per service when its mail was attributed to several.`,
      }),
      dataTable(page, columns, context, { caption: 'Sources' }),
    ),
  );
}
