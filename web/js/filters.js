// The filters of every view live in the page URL, so that a link shows the same data to a
// colleague. Presets (range=30d) stay relative; the API receives from/to as dates.

import { localTimeZone } from './format.js';

export const DEFAULT_RANGE = '30d';
const RANGE_DAYS = { '7d': 7, '30d': 30, '90d': 90, '365d': 365 };

/** Query parameters that belong to the filter bar; views add their own (sort, page, …). */
export const FILTER_KEYS = [
  'range',
  'from',
  'to',
  'domain',
  'reporter',
  'service',
  'result',
  'disposition',
  'tz',
];

/**
 * The filters each kind of view applies. `dates` stands for range, from and to. The analysis
 * views read daily totals, which have UTC days and no split by result or disposition.
 */
export const FILTER_SETS = {
  records: ['dates', 'domain', 'reporter', 'service', 'result', 'disposition', 'tz'],
  analysis: ['dates', 'domain', 'reporter', 'service'],
  dates: ['dates', 'tz'],
  none: [],
};

export function readFilters(params) {
  const filters = {};
  for (const key of FILTER_KEYS) filters[key] = params.get(key) ?? '';
  if (!filters.range) filters.range = filters.from || filters.to ? 'custom' : DEFAULT_RANGE;
  return filters;
}

function todayIn(timeZone) {
  // en-CA formats dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone }).format(new Date());
}

function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/** Translates the filters of a view (a list from FILTER_SETS) into the API's query parameters. */
export function apiParams(filters, keys = FILTER_SETS.records) {
  const params = new URLSearchParams();
  const timeZone = keys.includes('tz') && filters.tz === 'local' ? localTimeZone() : 'UTC';
  if (timeZone !== 'UTC') params.set('tz', timeZone);

  if (keys.includes('dates')) {
    if (filters.range === 'custom') {
      if (filters.from) params.set('from', filters.from);
      if (filters.to) params.set('to', filters.to);
    } else if (RANGE_DAYS[filters.range]) {
      const today = todayIn(timeZone);
      params.set('from', addDays(today, 1 - RANGE_DAYS[filters.range]));
      params.set('to', today);
    }
  }
  for (const key of ['domain', 'reporter', 'service', 'result', 'disposition']) {
    if (keys.includes(key) && filters[key]) params.set(key, filters[key]);
  }
  return params;
}

/** The page's query string with only the filter parameters, for links between views. */
export function filterQuery(params) {
  const kept = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const value = params.get(key);
    if (value) kept.set(key, value);
  }
  const text = kept.toString();
  return text ? `?${text}` : '';
}

function setOptions(select, values, current, allLabel) {
  const options = [new Option(allLabel, '')];
  const known = new Set(values);
  if (current && !known.has(current)) values = [current, ...values];
  for (const value of values) options.push(new Option(value, value));
  select.replaceChildren(...options);
  select.value = current;
}

/** Shows the filters of the URL in the filter bar, and only those that the view applies. */
export function showFilters(form, filters, options, keys) {
  form.hidden = keys.length === 0;
  form.elements.range.value = filters.range;
  form.elements.from.value = filters.from;
  form.elements.to.value = filters.to;
  setOptions(form.elements.domain, options.domains ?? [], filters.domain, 'All domains');
  setOptions(form.elements.reporter, options.reporters ?? [], filters.reporter, 'All reporters');
  setOptions(form.elements.service, options.services ?? [], filters.service, 'All services');
  form.elements.result.value = filters.result;
  form.elements.disposition.value = filters.disposition;
  form.elements.tz.value = filters.tz;
  for (const label of form.querySelectorAll('[data-filter]'))
    label.hidden = !keys.includes(label.dataset.filter);
  for (const label of form.querySelectorAll('[data-custom-range]'))
    label.hidden ||= filters.range !== 'custom';
  form.querySelector('#utc-note').hidden = !keys.includes('dates') || keys.includes('tz');

  // Filters of other views stay in the URL for the way back, so the bar names those it ignores.
  const ignored = Object.entries(FILTER_LABELS)
    .filter(([key]) => filters[key] && !keys.includes(key))
    .map(([key, label]) => `${label} ${filters[key]}`);
  const note = form.querySelector('#unapplied-note');
  note.hidden = ignored.length === 0;
  note.textContent = ignored.length ? `Not applied here: ${ignored.join(', ')}.` : '';
}

const FILTER_LABELS = {
  domain: 'domain',
  reporter: 'reporter',
  service: 'service',
  result: 'DMARC result',
  disposition: 'disposition',
};

/** Reads the filter bar into URL parameters on top of `params`, dropping the page number. */
export function filtersFromForm(form, params) {
  const next = new URLSearchParams(params);
  for (const key of FILTER_KEYS) {
    const value = form.elements[key].value;
    if (value) next.set(key, value);
    else next.delete(key);
  }
  if (next.get('range') !== 'custom') {
    next.delete('from');
    next.delete('to');
  }
  if (next.get('range') === DEFAULT_RANGE) next.delete('range');
  next.delete('page');
  return next;
}
