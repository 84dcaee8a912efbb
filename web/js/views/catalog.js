// The service catalog in Settings: a table for everyone, and for admins a YAML editor that
// replaces the catalog. The server validates the YAML and names the service and rule of every
// problem, and the editor lists those problems under the text.

import { api } from '../api.js';
import { h, notice, panel, toast } from '../dom.js';
import { formatTime } from '../format.js';
import { ANALYSIS_MISSING } from './common.js';

const RULE_KINDS = ['ip', 'ptr', 'dkim', 'spf', 'header_from', 'provider'];

function ruleText(kind, values) {
  const texts = values.map((value) =>
    kind === 'dkim' ? `d=${value.domain}${value.selector ? ` s=${value.selector}` : ''}` : value,
  );
  return `${kind}: ${texts.join(', ')}`;
}

function catalogTable(services) {
  return h(
    'div',
    { className: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { className: 'visually-hidden', text: 'Service catalog' }),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Service', 'Team', 'Contact', 'Description', 'Rules'].map((label) =>
            h('th', { scope: 'col', text: label }),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        services.length === 0
          ? h('tr', {}, h('td', { colspan: 5, className: 'muted', text: 'No services yet.' }))
          : null,
        services.map((service) =>
          h(
            'tr',
            {},
            h('td', { className: 'wrap-anywhere', text: service.name }),
            h('td', { text: service.team ?? '' }),
            h('td', { className: 'wrap-anywhere', text: service.contact ?? '' }),
            h('td', { text: service.description ?? '' }),
            h(
              'td',
              { className: 'wrap-anywhere' },
              RULE_KINDS.filter((kind) => service.rules[kind]?.length).map((kind, index) => [
                index > 0 ? h('br') : null,
                ruleText(kind, service.rules[kind]),
              ]),
            ),
          ),
        ),
      ),
    ),
  );
}

function fileStatus(catalog) {
  if (!catalog.file) {
    return h('p', {
      className: 'muted',
      text: `Catalog version ${catalog.version}; no SERVICES_FILE is set.`,
    });
  }
  const loaded = `Loaded from ${catalog.file.path} at ${formatTime(catalog.file.loaded_at)}`;
  if (catalog.file.in_sync) {
    return h('p', { className: 'muted wrap-anywhere', text: `${loaded}; unchanged since.` });
  }
  return h(
    'p',
    { className: 'wrap-anywhere' },
    `${loaded}. Changed here since: `,
    h('a', { href: '/api/catalog.yaml', download: 'services.yaml', text: 'download the catalog' }),
    ' and commit it to SERVICES_FILE, which the server does not rewrite.',
  );
}

/**
 * Splits `Invalid service catalog in the request: issue; issue` into its lines, so that each
 * problem (`Service "billing", rule ip[0]: invalid CIDR …`) gets its own list item.
 */
function catalogIssues(message) {
  const match = /^(Invalid service catalog[^:]*): (.*)$/s.exec(message);
  return match ? { title: match[1], issues: match[2].split('; ') } : { title: message, issues: [] };
}

function catalogEditor(context, catalog, yaml) {
  const errors = h('div', { className: 'form-errors', role: 'alert' });
  const textarea = h('textarea', {
    className: 'code',
    name: 'catalog',
    rows: Math.min(30, Math.max(10, yaml.split('\n').length + 2)),
    spellcheck: 'false',
    'aria-describedby': 'catalog-help',
  });
  textarea.value = yaml;
  const save = h('button', { type: 'submit', className: 'primary', text: 'Save catalog' });

  const form = h(
    'form',
    {
      on: {
        submit: async (event) => {
          event.preventDefault();
          save.disabled = true;
          errors.replaceChildren();
          try {
            const result = await api.putText(
              '/api/catalog',
              textarea.value,
              'application/yaml',
              new URLSearchParams({ version: String(catalog.version) }),
            );
            toast(`Catalog saved as version ${result.version}; attribution is being recomputed`);
            context.setParams({});
          } catch (error) {
            const { title, issues } = catalogIssues(error.message);
            errors.append(
              h('p', {
                text:
                  error.code === 'catalog-changed'
                    ? `${title} Reload the page to edit the current catalog.`
                    : title,
              }),
              issues.length
                ? h(
                    'ul',
                    {},
                    issues.map((issue) => h('li', { text: issue })),
                  )
                : null,
            );
            save.disabled = false;
          }
        },
      },
    },
    h('h3', {}, h('label', { for: 'catalog-yaml', text: 'Edit the catalog as YAML' })),
    h('p', {
      id: 'catalog-help',
      className: 'muted',
      text: 'Each service has a name, optional team, contact and description, and rules: ip, ptr, dkim (domain and selector), spf, header_from and provider.',
    }),
    textarea,
    h('p', {}, save),
    errors,
  );
  textarea.id = 'catalog-yaml';
  return form;
}

/** Renders the catalog panel: the table, whether SERVICES_FILE is in sync, and the editor. */
export async function catalogPanel(context, admin) {
  let catalog;
  try {
    catalog = await api.get('/api/catalog');
  } catch (error) {
    if (error.code === 'not-found' || error.code === 'not-available') {
      return panel('Service catalog', notice(ANALYSIS_MISSING));
    }
    throw error;
  }
  const yaml = admin ? await api.get('/api/catalog.yaml') : null;
  return panel(
    'Service catalog',
    fileStatus(catalog),
    catalogTable(catalog.services),
    admin ? catalogEditor(context, catalog, yaml) : notice('Only admins change the catalog.'),
  );
}
