import type { AggregateReport, ReportRecord } from '../domain/report.js';

function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function element(name: string, value: string | number | null | undefined, indent: string): string {
  if (value === null || value === undefined) return '';
  return `${indent}<${name}>${escapeXml(String(value))}</${name}>\n`;
}

/** Writes one record as RFC 7489 XML. */
export function renderRecordXml(record: ReportRecord): string {
  let xml = '  <record>\n    <row>\n';
  xml += element('source_ip', record.sourceIp, '      ');
  xml += element('count', record.count, '      ');
  xml += '      <policy_evaluated>\n';
  xml += element('disposition', record.disposition, '        ');
  xml += element('dkim', record.evalDkim, '        ');
  xml += element('spf', record.evalSpf, '        ');
  for (const reason of record.reasons) {
    xml += '        <reason>\n';
    xml += element('type', reason.type, '          ');
    xml += element('comment', reason.comment, '          ');
    xml += '        </reason>\n';
  }
  xml += '      </policy_evaluated>\n    </row>\n    <identifiers>\n';
  xml += element('header_from', record.headerFrom, '      ');
  xml += element('envelope_from', record.envelopeFrom, '      ');
  xml += '    </identifiers>\n    <auth_results>\n';
  for (const dkim of record.dkim) {
    xml += '      <dkim>\n';
    xml += element('domain', dkim.domain, '        ');
    xml += element('selector', dkim.selector, '        ');
    xml += element('result', dkim.result, '        ');
    xml += '      </dkim>\n';
  }
  for (const spf of record.spf) {
    xml += '      <spf>\n';
    xml += element('domain', spf.domain, '        ');
    xml += element('scope', spf.scope, '        ');
    xml += element('result', spf.result, '        ');
    xml += '      </spf>\n';
  }
  xml += '    </auth_results>\n  </record>\n';
  return xml;
}

/** Writes the part of a report before its records. */
export function renderReportHead(report: Omit<AggregateReport, 'records'>): string {
  const { metadata, policy } = report;
  let xml = '<?xml version="1.0" encoding="UTF-8"?>\n<feedback>\n';
  xml += element('version', report.version, '  ');
  xml += '  <report_metadata>\n';
  xml += element('org_name', metadata.orgName, '    ');
  xml += element('email', metadata.email, '    ');
  xml += element('extra_contact_info', metadata.extraContactInfo, '    ');
  xml += element('report_id', metadata.reportId, '    ');
  xml += '    <date_range>\n';
  xml += element('begin', Math.floor(metadata.dateBegin.getTime() / 1000), '      ');
  xml += element('end', Math.floor(metadata.dateEnd.getTime() / 1000), '      ');
  xml += '    </date_range>\n  </report_metadata>\n  <policy_published>\n';
  xml += element('domain', policy.domain, '    ');
  xml += element('adkim', policy.adkim, '    ');
  xml += element('aspf', policy.aspf, '    ');
  xml += element('p', policy.p, '    ');
  xml += element('sp', policy.sp, '    ');
  xml += element('np', policy.np, '    ');
  xml += element('pct', policy.pct, '    ');
  xml += element('testing', policy.testing, '    ');
  xml += '  </policy_published>\n';
  return xml;
}

export const REPORT_TAIL = '</feedback>\n';

/** Writes a whole report as RFC 7489 XML (RFC 9990 elements where the report has them). */
export function renderReportXml(report: AggregateReport): string {
  return renderReportHead(report) + report.records.map(renderRecordXml).join('') + REPORT_TAIL;
}
