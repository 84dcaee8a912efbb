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
    text: cssColor('--text'),
    muted: cssColor('--muted'),
    grid: cssColor('--grid'),
    surface: cssColor('--surface'),
  };
}

// Each dataset names its colour as a CSS custom property in `colorVar`, read again whenever the
// colour scheme changes.
function applyTheme(chart) {
  const colors = themeColors();
  for (const dataset of chart.data.datasets) {
    const color = cssColor(dataset.colorVar);
    dataset.backgroundColor = color;
    dataset.borderColor = color;
  }
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

function chartMissing(table) {
  return h(
    'div',
    {},
    h('p', { className: 'notice', text: 'chart.js did not load; the numbers follow.' }),
    table,
  );
}

function startChart(canvas, config) {
  const chart = new window.Chart(canvas, config);
  applyTheme(chart);
  chart.update('none');
  liveCharts.add(chart);
  return chart;
}

// Attributed: a service of the catalog claims the sender. The unattributed series use lighter
// shades of the same pass and fail colours.
const ATTRIBUTION_DATASETS = [
  { key: 'attributedPass', label: 'Attributed, pass', colorVar: '--pass' },
  { key: 'unattributedPass', label: 'Unattributed, pass', colorVar: '--pass-soft' },
  { key: 'attributedFail', label: 'Attributed, fail', colorVar: '--fail' },
  { key: 'unattributedFail', label: 'Unattributed, fail', colorVar: '--fail-soft' },
];

/**
 * Creates a stacked bar chart of messages per day: DMARC pass and fail, each split into mail
 * that a catalog service claims and the rest. The same numbers follow as a table for screen
 * readers and for copying.
 */
export function attributionChart(series) {
  const canvas = h('canvas', {
    role: 'img',
    'aria-label':
      'Messages per day: DMARC pass and fail, attributed to a catalog service or not. The table below has the numbers.',
  });
  const table = attributionTable(series);
  if (typeof window.Chart !== 'function') return chartMissing(table);

  const totals = series.labels.map((_, index) =>
    ATTRIBUTION_DATASETS.reduce((sum, dataset) => sum + series[dataset.key][index], 0),
  );
  startChart(canvas, {
    type: 'bar',
    data: {
      labels: series.labels,
      datasets: ATTRIBUTION_DATASETS.map((dataset) => ({
        label: dataset.label,
        data: series[dataset.key],
        colorVar: dataset.colorVar,
        stack: 'messages',
      })),
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
  return h('div', {}, h('div', { className: 'chart-box' }, canvas), table);
}

function numbersTable(headers, rows) {
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
            headers.map((header, index) =>
              h('th', { scope: 'col', className: index > 0 ? 'number' : '', text: header }),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          rows.map((cells) =>
            h(
              'tr',
              {},
              cells.map((cell, index) =>
                h('td', { className: index > 0 ? 'number' : '', text: cell }),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

function attributionTable(series) {
  const rows = series.labels.map((day, index) => {
    const values = ATTRIBUTION_DATASETS.map((dataset) => series[dataset.key][index]);
    const total = values.reduce((sum, value) => sum + value, 0);
    const pass = series.attributedPass[index] + series.unattributedPass[index];
    return [day, ...values.map(formatNumber), formatRate(total ? pass / total : null)];
  });
  return numbersTable(
    ['Day', ...ATTRIBUTION_DATASETS.map((dataset) => dataset.label), 'Pass rate'],
    rows,
  );
}

/**
 * Creates a small line chart of a service's DMARC pass rate per day, 0 to 100%, with the day's
 * messages in the tooltip. `daily`: [{ day, messages, pass, pass_rate }].
 */
export function passRateSparkline(daily, name) {
  const rates = daily.map((day) => day.pass_rate);
  const known = rates.filter((rate) => rate !== null);
  const summary = known.length
    ? `lowest ${formatRate(Math.min(...known))}, latest ${formatRate(known.at(-1))}`
    : 'no mail';
  const canvas = h('canvas', {
    role: 'img',
    'aria-label': `DMARC pass rate per day of ${name}: ${summary}`,
  });
  if (typeof window.Chart !== 'function') {
    return h('p', { className: 'muted', text: `Pass rate per day: ${summary}` });
  }
  startChart(canvas, {
    type: 'line',
    data: {
      labels: daily.map((day) => day.day),
      datasets: [
        {
          label: 'DMARC pass rate',
          data: rates.map((rate) => (rate === null ? null : rate * 100)),
          colorVar: '--accent',
          borderWidth: 2,
          pointRadius: 0,
          pointHitRadius: 6,
          spanGaps: true,
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: { display: false, ticks: {}, grid: {} },
        // A little room above 100% and below 0%, so that a flat line stays visible.
        y: { display: false, min: -4, max: 104, ticks: {}, grid: {} },
      },
      plugins: {
        legend: { display: false, labels: {} },
        tooltip: {
          borderWidth: 1,
          callbacks: {
            label: (item) => {
              const day = daily[item.dataIndex];
              return `${formatRate(day.pass_rate)} pass of ${formatNumber(day.messages)} messages`;
            },
          },
        },
      },
    },
  });
  return h('div', { className: 'sparkline' }, canvas);
}
