// Charts with chart.js (the UMD build, loaded as a classic script that defines window.Chart).
// Colours come from the CSS custom properties, so that charts follow light and dark mode.

import { h } from './dom.js';
import { formatNumber, formatRate } from './format.js';

const darkScheme = window.matchMedia('(prefers-color-scheme: dark)');
const liveCharts = new Set();

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function themeColors() {
  return {
    pass: cssColor('--pass'),
    fail: cssColor('--fail'),
    text: cssColor('--text'),
    muted: cssColor('--muted'),
    grid: cssColor('--grid'),
    surface: cssColor('--surface'),
  };
}

function applyTheme(chart) {
  const colors = themeColors();
  const [pass, fail] = chart.data.datasets;
  pass.backgroundColor = colors.pass;
  fail.backgroundColor = colors.fail;
  for (const axis of Object.values(chart.options.scales)) {
    axis.ticks.color = colors.muted;
    axis.grid.color = colors.grid;
  }
  chart.options.plugins.legend.labels.color = colors.text;
  chart.options.plugins.tooltip.backgroundColor = colors.surface;
  chart.options.plugins.tooltip.titleColor = colors.text;
  chart.options.plugins.tooltip.bodyColor = colors.text;
  chart.options.plugins.tooltip.footerColor = colors.text;
  chart.options.plugins.tooltip.borderColor = colors.grid;
}

darkScheme.addEventListener('change', () => {
  for (const chart of liveCharts) {
    applyTheme(chart);
    chart.update('none');
  }
});

/** Destroys the charts of the previous view, so that their canvases and listeners go away. */
export function destroyCharts() {
  for (const chart of liveCharts) chart.destroy();
  liveCharts.clear();
}

/**
 * A stacked bar chart of messages per day split into DMARC pass and fail, with the same
 * numbers as a table for screen readers and for copying.
 */
export function dailyPassFailChart(daily) {
  const canvas = h('canvas', {
    role: 'img',
    'aria-label': 'Messages per day, DMARC pass and fail',
  });
  const box = h('div', { className: 'chart-box' }, canvas);
  const table = dailyTable(daily);

  if (typeof window.Chart !== 'function') {
    return h(
      'div',
      {},
      h('p', { className: 'notice', text: 'chart.js did not load; the numbers follow.' }),
      table,
    );
  }
  const totals = daily.labels.map((_, index) => daily.pass[index] + daily.fail[index]);
  const chart = new window.Chart(canvas, {
    type: 'bar',
    data: {
      labels: daily.labels,
      datasets: [
        { label: 'DMARC pass', data: daily.pass, stack: 'messages' },
        { label: 'DMARC fail', data: daily.fail, stack: 'messages' },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: { stacked: true, ticks: {}, grid: {} },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, grid: {} },
      },
      plugins: {
        legend: { labels: {} },
        tooltip: {
          borderWidth: 1,
          callbacks: {
            label: (item) => {
              const total = totals[item.dataIndex];
              const rate = total > 0 ? item.parsed.y / total : null;
              return `${item.dataset.label}: ${formatNumber(item.parsed.y)} (${formatRate(rate)})`;
            },
            footer: (items) => `Total: ${formatNumber(totals[items[0].dataIndex])} messages`,
          },
        },
      },
    },
  });
  applyTheme(chart);
  chart.update('none');
  liveCharts.add(chart);
  return h('div', {}, box, table);
}

function dailyTable(daily) {
  const rows = daily.labels.map((day, index) => {
    const total = daily.pass[index] + daily.fail[index];
    return h(
      'tr',
      {},
      h('td', { text: day }),
      h('td', { className: 'number', text: formatNumber(daily.pass[index]) }),
      h('td', { className: 'number', text: formatNumber(daily.fail[index]) }),
      h('td', { className: 'number', text: formatRate(total ? daily.pass[index] / total : null) }),
    );
  });
  return h(
    'details',
    {},
    h('summary', { text: 'Show the numbers as a table' }),
    h(
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
            h('th', { scope: 'col', text: 'Day' }),
            h('th', { scope: 'col', className: 'number', text: 'Pass' }),
            h('th', { scope: 'col', className: 'number', text: 'Fail' }),
            h('th', { scope: 'col', className: 'number', text: 'Pass rate' }),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ),
  );
}
