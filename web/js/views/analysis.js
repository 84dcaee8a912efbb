// Services, recommendations and the what-if simulator come from the analysis part. Until the
// server provides it, its endpoints respond 501 and these views show a notice.

import { api } from '../api.js';
import { h, notice, panel } from '../dom.js';
import { apiParams } from '../filters.js';
import { viewHeader } from './common.js';

const VIEWS = {
  services: {
    title: 'Services',
    path: '/api/services',
    missing: 'Service attribution is not available yet.',
  },
  recommendations: {
    title: 'Recommendations',
    path: '/api/recommendations',
    missing: 'Recommendations are not available yet.',
  },
  whatif: {
    title: 'What-if',
    path: '/api/whatif',
    missing: 'The what-if policy simulator is not available yet.',
  },
};

function cellText(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Renders whatever rows the endpoint returns as a table, every cell as text. */
function genericTable(rows) {
  const keys = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return h(
    'div',
    { className: 'table-wrap' },
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          keys.map((key) => h('th', { scope: 'col', text: key })),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((row) =>
          h(
            'tr',
            {},
            keys.map((key) => h('td', { className: 'wrap-anywhere', text: cellText(row[key]) })),
          ),
        ),
      ),
    ),
  );
}

export async function renderAnalysisView(context, name) {
  const view = VIEWS[name];
  let body;
  try {
    const data = await api.get(view.path, apiParams(context.filters));
    const rows = Array.isArray(data) ? data : data.rows;
    body = Array.isArray(rows)
      ? genericTable(rows)
      : h('pre', { className: 'raw', text: JSON.stringify(data, null, 2) });
  } catch (error) {
    if (error.code !== 'not-available') throw error;
    body = notice(view.missing);
  }
  if (!context.isCurrent()) return;
  context.show(viewHeader(view.title), panel(view.title, body));
}
