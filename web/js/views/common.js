// Pieces several views share: links, result badges and the header of a view.

import { api } from '../api.js';
import { h } from '../dom.js';
import { filterQuery } from '../filters.js';
import { formatRate } from '../format.js';

export function viewHeader(title, ...actions) {
  return h(
    'div',
    { className: 'toolbar' },
    h('h1', { text: title }),
    h('span', { className: 'spacer' }),
    ...actions,
  );
}

/** Creates a link to another view that keeps the current filters and adds `extra` parameters. */
export function viewLink(context, path, text, extra = {}) {
  const params = new URLSearchParams(filterQuery(context.params));
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  const query = params.toString();
  return h('a', { href: `${path}${query ? `?${query}` : ''}`, text });
}

export function reportLink(row) {
  return h('a', {
    href: `/reports/${Number(row.id)}`,
    className: 'wrap-anywhere',
    text: row.report_id,
  });
}

export function sourceLink(context, ip) {
  if (!ip) return h('span', { className: 'muted', text: '(empty)' });
  return viewLink(context, '/records', ip, { source_ip: ip });
}

export function resultBadge(pass) {
  return h('span', { className: `badge ${pass ? 'pass' : 'fail'}`, text: pass ? 'pass' : 'fail' });
}

export function evalBadge(value) {
  if (!value) return h('span', { className: 'muted', text: '–' });
  return h('span', { className: value === 'pass' ? 'pass' : 'fail', text: value });
}

// Pass rates shown green from 98% and red below 90%: a domain close to full alignment versus
// one where a p=reject policy would block a noticeable share of real mail.
const GOOD_PASS_RATE = 0.98;
const POOR_PASS_RATE = 0.9;

/** Returns the CSS class that colours a pass rate, or '' in between. */
export function rateClass(rate) {
  if (rate === null || rate === undefined) return '';
  if (rate >= GOOD_PASS_RATE) return 'pass';
  if (rate < POOR_PASS_RATE) return 'fail';
  return '';
}

export function rateCell(rate) {
  const text = formatRate(rate);
  if (rate === null || rate === undefined) return text;
  return h('span', { className: rateClass(rate), text });
}

/** Renders the DKIM or SPF results of a record as `domain = result` lines. */
export function authResults(results, withSelector = false) {
  if (!results || results.length === 0) return h('span', { className: 'muted', text: 'none' });
  return h(
    'span',
    { className: 'wrap-anywhere' },
    results.map((result, index) => [
      index > 0 ? h('br') : null,
      `${result.domain ?? ''}${withSelector && result.selector ? ` (s=${result.selector})` : ''} = `,
      h('span', {
        className: result.result === 'pass' ? 'pass' : 'fail',
        text: result.result ?? '',
      }),
    ]),
  );
}

export function policyText(policy) {
  if (!policy || !policy.p) return '–';
  const parts = [`p=${policy.p}`];
  if (policy.sp) parts.push(`sp=${policy.sp}`);
  if (policy.np) parts.push(`np=${policy.np}`);
  if (policy.pct !== null && policy.pct !== undefined && policy.pct !== 100)
    parts.push(`pct=${policy.pct}`);
  return parts.join('; ');
}

export function isAdmin(context) {
  return context.session?.user?.role === 'admin';
}

/**
 * Fetches an analysis endpoint. Returns null when the server runs without the analysis part,
 * whose endpoints then respond 501 `not-available`.
 */
export async function fetchAnalysis(path, params) {
  try {
    return await api.get(path, params);
  } catch (error) {
    if (error.code === 'not-available') return null;
    throw error;
  }
}

export const ANALYSIS_MISSING =
  'Service attribution and recommendations are not available on this server.';

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };

/** Sorts recommendations by severity, keeping the server's order within one severity. */
export function bySeverity(rows) {
  return [...rows].sort(
    (a, b) => (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3),
  );
}

export function severityBadge(severity) {
  return h('span', { className: `badge ${severity}`, text: severity });
}

/** Returns the title of a services row: the catalog service, the provider, or unattributed. */
export function serviceTitle(row) {
  if (row.kind === 'service') return row.service;
  if (row.kind === 'provider') return `${row.provider} (provider, not in the catalog)`;
  return 'Unattributed sources';
}
