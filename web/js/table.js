// Tables sorted and paginated by the server: sort, order, page and page_size live in the URL.

import { h } from './dom.js';
import { formatNumber } from './format.js';

const PAGE_SIZES = [25, 50, 100, 250];

/**
 * Renders one page of an API list. `columns`: { key, label, sort?, numeric?, render?(row) }.
 * `context.setParams(changes)` updates the URL and renders the view again.
 */
export function dataTable(page, columns, context, options = {}) {
  const params = context.params;
  const prefix = options.prefix ?? '';
  const sort = page.sort;
  const order = page.order;

  const header = h(
    'tr',
    {},
    columns.map((column) => {
      const active = column.sort && column.sort === sort;
      const ariaSort = active
        ? order === 'asc'
          ? 'ascending'
          : 'descending'
        : column.sort
          ? 'none'
          : null;
      const th = h('th', {
        scope: 'col',
        className: column.numeric ? 'number' : '',
        'aria-sort': ariaSort,
      });
      if (!column.sort) {
        th.textContent = column.label;
        return th;
      }
      const nextOrder = active && order === 'desc' ? 'asc' : 'desc';
      let arrow = '';
      if (active) arrow = order === 'asc' ? ' ▲' : ' ▼';
      th.append(
        h(
          'button',
          {
            type: 'button',
            title: `Sort by ${column.label}`,
            on: {
              click: () =>
                context.setParams({
                  [`${prefix}sort`]: column.sort,
                  [`${prefix}order`]: nextOrder,
                  [`${prefix}page`]: null,
                }),
            },
          },
          column.label,
          h('span', { 'aria-hidden': 'true', text: arrow }),
        ),
      );
      return th;
    }),
  );

  const body = page.rows.length
    ? page.rows.map((row) =>
        h(
          'tr',
          {},
          columns.map((column) => {
            const value = column.render ? column.render(row) : row[column.key];
            const text = column.numeric && typeof value === 'number' ? formatNumber(value) : value;
            return h(
              'td',
              { className: column.numeric ? 'number' : (column.className ?? '') },
              text ?? '',
            );
          }),
        ),
      )
    : [
        h(
          'tr',
          {},
          h('td', {
            colspan: columns.length,
            className: 'muted',
            text: options.empty ?? 'Nothing matches these filters.',
          }),
        ),
      ];

  const table = h(
    'table',
    {},
    options.caption ? h('caption', { className: 'visually-hidden', text: options.caption }) : null,
    h('thead', {}, header),
    h('tbody', {}, body),
  );
  const wrap = h(
    'div',
    {
      className: 'table-wrap',
      tabindex: 0,
      role: 'region',
      'aria-label': options.caption ?? 'Table',
    },
    table,
  );
  return h('div', {}, wrap, pager(page, context, prefix));
}

function pager(page, context, prefix) {
  const first = page.total === 0 ? 0 : (page.page - 1) * page.pageSize + 1;
  const last = Math.min(page.total, page.page * page.pageSize);
  const pages = Math.max(1, Math.ceil(page.total / page.pageSize));
  const sizeSelect = h(
    'select',
    {
      on: {
        change: (event) =>
          context.setParams({
            [`${prefix}page_size`]: event.target.value,
            [`${prefix}page`]: null,
          }),
      },
    },
    PAGE_SIZES.map((size) =>
      h('option', { value: size, selected: size === page.pageSize, text: String(size) }),
    ),
  );
  return h(
    'div',
    { className: 'pager' },
    h('span', {
      text: `${formatNumber(first)}–${formatNumber(last)} of ${formatNumber(page.total)}`,
    }),
    h('button', {
      type: 'button',
      text: 'Previous',
      disabled: page.page <= 1,
      on: {
        click: () =>
          context.setParams({ [`${prefix}page`]: page.page - 1 > 1 ? page.page - 1 : null }),
      },
    }),
    h('span', { text: `Page ${page.page} of ${pages}` }),
    h('button', {
      type: 'button',
      text: 'Next',
      disabled: page.page >= pages,
      on: { click: () => context.setParams({ [`${prefix}page`]: page.page + 1 }) },
    }),
    h('label', {}, 'Rows per page ', sizeSelect),
  );
}

/** Copies the page-related parameters of the URL (sort, order, page, page_size) for the API. */
export function pageParams(params, target, prefix = '') {
  for (const key of ['sort', 'order', 'page', 'page_size']) {
    const value = params.get(`${prefix}${key}`);
    if (value) target.set(key, value);
  }
  return target;
}

/** Creates a link that downloads the CSV twin of an API list with the same filters and order. */
export function csvLink(path, apiParams, label = 'Download CSV') {
  const params = new URLSearchParams(apiParams);
  params.delete('page');
  params.delete('page_size');
  const query = params.toString();
  return h('a', {
    className: 'button',
    href: `${path}.csv${query ? `?${query}` : ''}`,
    download: '',
    text: label,
  });
}
