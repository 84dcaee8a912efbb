import { api } from '../api.js';
import { h, panel, toast } from '../dom.js';
import { formatNumber, formatRate, formatTime } from '../format.js';
import { csvLink, dataTable, pageParams } from '../table.js';
import { policyText, viewHeader } from './common.js';
import { recordColumns } from './records.js';

function fields(entries) {
  return h(
    'dl',
    { className: 'fields' },
    entries
      .filter(([, value]) => value !== null && value !== undefined && value !== '')
      .map(([label, value]) => [h('dt', { text: label }), h('dd', {}, value)]),
  );
}

function rawXmlPanel(reportId) {
  const output = h('pre', {
    className: 'raw',
    hidden: true,
    tabindex: 0,
    'aria-label': 'Raw report XML',
  });
  const button = h('button', {
    type: 'button',
    text: 'Show raw XML',
    'aria-expanded': 'false',
    on: {
      click: async () => {
        if (!output.hidden) {
          output.hidden = true;
          button.textContent = 'Show raw XML';
          button.setAttribute('aria-expanded', 'false');
          return;
        }
        try {
          // The XML comes from the reporter: it is shown as text, never parsed as HTML.
          output.textContent = await api.get(`/api/reports/${reportId}/raw`);
          output.hidden = false;
          button.textContent = 'Hide raw XML';
          button.setAttribute('aria-expanded', 'true');
        } catch (error) {
          toast(`Raw XML not loaded: ${error.message}`);
        }
      },
    },
  });
  const download = h('a', {
    className: 'button',
    href: `/api/reports/${reportId}/raw`,
    download: '',
    text: 'Download XML',
  });
  return panel('Raw report', h('div', { className: 'toolbar' }, button, download), output);
}

export async function renderReportDetail(context) {
  const id = Number(context.match[1]);
  const detail = await api.get(
    `/api/reports/${id}`,
    pageParams(context.params, new URLSearchParams()),
  );
  if (!context.isCurrent()) return;
  const { report, records } = detail;
  const local = context.params.get('tz') === 'local';

  const header = fields([
    ['Reporter', report.org_name],
    ['Reporter e-mail', report.reporter_email],
    ['Extra contact', report.reporter_extra_contact],
    ['Report ID', report.report_id],
    ['Domain', report.domain],
    ['Begins', formatTime(report.begin, local)],
    ['Ends', formatTime(report.end, local)],
    ['Schema version', report.version ?? 'draft (no version element)'],
    ['Generator', report.generator],
    ['Records', formatNumber(report.records)],
    ['Messages', formatNumber(report.messages)],
    ['DMARC pass', `${formatNumber(report.dmarc_pass)} (${formatRate(report.pass_rate)})`],
    ['Foreign', report.foreign ? 'yes: the domain is outside DOMAINS' : null],
    ['Reporter errors', (report.report_errors ?? []).join('; ')],
    ['Warnings', (report.warnings ?? []).join('; ')],
    [
      'Input',
      `${report.input_name} (${report.input_source}, received ${formatTime(report.input_received_at, local)})`,
    ],
    ['Document', report.document],
  ]);
  const policy = fields([
    [
      'Policy',
      policyText({
        p: report.policy_p,
        sp: report.policy_sp,
        np: report.policy_np,
        pct: report.policy_pct,
      }),
    ],
    ['DKIM alignment (adkim)', report.policy_adkim],
    ['SPF alignment (aspf)', report.policy_aspf],
    ['Failure reporting (fo)', report.policy_fo],
    ['Testing (t)', report.policy_testing],
    ['Discovery method', report.policy_discovery_method],
  ]);

  const recordParams = pageParams(context.params, new URLSearchParams());
  context.show(
    viewHeader(
      `Report ${report.report_id}`,
      csvLink(`/api/reports/${id}`, recordParams, 'Records (CSV)'),
    ),
    h('div', { className: 'grid' }, panel('Report', header), panel('Policy published', policy)),
    panel(
      'Records',
      dataTable(records, recordColumns(local, { withReport: false }), context, {
        caption: 'Records of this report',
      }),
    ),
    rawXmlPanel(id),
  );
}
