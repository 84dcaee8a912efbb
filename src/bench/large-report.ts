import { createRandom } from '../demo/sample-reports.js';
import { renderRecordXml, renderReportHead, REPORT_TAIL } from '../demo/report-xml.js';
import type { ReportRecord } from '../domain/report.js';

/**
 * Generates one large aggregate report as XML, deterministically from a seed: the shape of a
 * big receiver's daily report for a busy domain, with IPv4 and IPv6 sources, one or two DKIM
 * results and an SPF result per record.
 */
export function generateLargeReportXml(records: number, seed = 1): Buffer {
  const random = createRandom(seed);
  const parts: string[] = [];
  parts.push(
    renderReportHead({
      version: '1.0',
      namespace: null,
      metadata: {
        orgName: 'google.com',
        email: 'noreply-dmarc-support@google.com',
        extraContactInfo: null,
        reportId: `bench-${seed}-${records}`,
        dateBegin: new Date('2026-11-01T00:00:00Z'),
        dateEnd: new Date('2026-11-01T23:59:59Z'),
        errors: [],
        generator: null,
      },
      policy: {
        domain: 'example.com',
        adkim: 'r',
        aspf: 'r',
        p: 'none',
        sp: null,
        np: null,
        pct: 100,
        fo: null,
        testing: null,
        discoveryMethod: null,
      },
      extensions: null,
      warnings: [],
    }),
  );
  for (let i = 0; i < records; i++) parts.push(renderRecordXml(randomRecord(random)));
  parts.push(REPORT_TAIL);
  return Buffer.from(parts.join(''));
}

export function randomRecord(random: () => number): ReportRecord {
  const ipv6 = random() < 0.15;
  const octet = () => Math.floor(random() * 256);
  const sourceIp = ipv6
    ? `2001:db8:${Math.floor(random() * 65535).toString(16)}::${Math.floor(random() * 65535).toString(16)}`
    : `${1 + Math.floor(random() * 222)}.${octet()}.${octet()}.${octet()}`;
  const dkimPass = random() < 0.7;
  const spfPass = random() < 0.6;
  const signer = random() < 0.8 ? 'example.com' : 'sendgrid.net';
  const dkim = [{ domain: signer, selector: 's1', result: dkimPass ? 'pass' : 'fail', humanResult: null }];
  if (random() < 0.3) dkim.push({ domain: 'mailer.example.net', selector: 'k2', result: 'pass', humanResult: null });
  return {
    sourceIp,
    count: 1 + Math.floor(random() * 40),
    disposition: 'none',
    evalDkim: dkimPass && signer === 'example.com' ? 'pass' : 'fail',
    evalSpf: spfPass ? 'pass' : 'fail',
    reasons: [],
    headerFrom: 'example.com',
    envelopeFrom: spfPass ? 'example.com' : 'bounces.example.net',
    envelopeTo: null,
    dkim,
    spf: [{ domain: spfPass ? 'example.com' : 'bounces.example.net', scope: 'mfrom', result: spfPass ? 'pass' : 'softfail', humanResult: null }],
    extensions: null,
  };
}
