import type {
  AggregateReport,
  DkimAuthResult,
  ReportRecord,
  SpfAuthResult,
} from '../domain/report.js';

/** A small deterministic random number generator (mulberry32), so that samples repeat exactly. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Reporter {
  orgName: string;
  email: string;
  version: string | null;
}

/** One kind of sender in the sample data, with how its mail authenticates. */
interface SampleSender {
  label: string;
  domain: string;
  ips: string[];
  headerFrom: string;
  envelopeFrom: string;
  dkim: DkimAuthResult[];
  spf: SpfAuthResult[];
  evalDkim: 'pass' | 'fail';
  evalSpf: 'pass' | 'fail';
  /** Messages per reporter and day, before randomness. */
  dailyVolume: number;
  reasons?: ReportRecord['reasons'];
}

const REPORTERS: Reporter[] = [
  { orgName: 'google.com', email: 'noreply-dmarc-support@google.com', version: '1.0' },
  { orgName: 'Outlook.com', email: 'dmarcreport@microsoft.com', version: '1.0' },
  { orgName: 'Yahoo', email: 'dmarchelp@yahooinc.com', version: null },
  { orgName: 'Mail.Ru', email: 'dmarc_support@corp.mail.ru', version: '1.0' },
  { orgName: 'GMX', email: 'noreply-dmarc@sicher.gmx.net', version: '2.0' },
];

export const SAMPLE_POLICIES: Record<string, { p: string; sp: string | null; pct: number | null }> =
  {
    'example.com': { p: 'none', sp: null, pct: null },
    'example.org': { p: 'quarantine', sp: 'quarantine', pct: 50 },
    'example.net': { p: 'none', sp: null, pct: null },
  };

const pass = (domain: string, selector: string | null = null): DkimAuthResult => ({
  domain,
  selector,
  result: 'pass',
  humanResult: null,
});
const spf = (domain: string, result: string): SpfAuthResult => ({
  domain,
  scope: 'mfrom',
  result,
  humanResult: null,
});

/** The senders of the sample organisation, each standing for a case the dashboard explains. */
export const SAMPLE_SENDERS: SampleSender[] = [
  {
    label: 'corporate mail through Google Workspace',
    domain: 'example.com',
    ips: ['209.85.220.41', '209.85.220.69', '2a00:1450:4864:20::131'],
    headerFrom: 'example.com',
    envelopeFrom: 'example.com',
    dkim: [pass('example.com', 'google')],
    spf: [spf('example.com', 'pass')],
    evalDkim: 'pass',
    evalSpf: 'pass',
    dailyVolume: 120,
  },
  {
    label: 'billing through SendGrid with custom DKIM and return-path',
    domain: 'example.com',
    ips: ['167.89.101.12', '167.89.101.13'],
    headerFrom: 'billing.example.com',
    envelopeFrom: 'em4821.billing.example.com',
    dkim: [pass('billing.example.com', 's1'), pass('sendgrid.net', 'smtpapi')],
    spf: [spf('em4821.billing.example.com', 'pass')],
    evalDkim: 'pass',
    evalSpf: 'pass',
    dailyVolume: 60,
  },
  {
    label: 'password resets through Amazon SES without custom DKIM',
    domain: 'example.com',
    ips: ['54.240.8.17', '54.240.8.33'],
    headerFrom: 'example.com',
    envelopeFrom: 'eu-west-1.amazonses.com',
    dkim: [pass('amazonses.com', 'ug7nbtf4gccmlpwj322ax3p6ow6yfsug')],
    spf: [spf('eu-west-1.amazonses.com', 'pass')],
    evalDkim: 'fail',
    evalSpf: 'fail',
    dailyVolume: 40,
  },
  {
    label: 'helpdesk through Freshdesk, not in the service catalog',
    domain: 'example.com',
    ips: ['185.151.36.20'],
    headerFrom: 'example.com',
    envelopeFrom: 'freshdesk.com',
    dkim: [pass('example.com', 'fd1')],
    spf: [spf('freshdesk.com', 'pass')],
    evalDkim: 'pass',
    evalSpf: 'fail',
    dailyVolume: 15,
  },
  {
    label: 'mailing-list forwarding of corporate mail',
    domain: 'example.com',
    ips: ['192.0.2.80'],
    headerFrom: 'example.com',
    envelopeFrom: 'lists.partner.example',
    dkim: [
      {
        domain: 'example.com',
        selector: 'google',
        result: 'fail',
        humanResult: 'body hash did not verify',
      },
    ],
    spf: [spf('lists.partner.example', 'pass')],
    evalDkim: 'fail',
    evalSpf: 'fail',
    dailyVolume: 4,
    reasons: [{ type: 'local_policy', comment: 'arc=pass' }],
  },
  {
    label: 'spoofing from unknown hosts',
    domain: 'example.com',
    ips: ['45.142.120.7', '103.56.17.201', '2001:db8:bad::25', '91.215.85.14'],
    headerFrom: 'example.com',
    envelopeFrom: 'mail-relay.invalid',
    dkim: [],
    spf: [spf('mail-relay.invalid', 'none')],
    evalDkim: 'fail',
    evalSpf: 'fail',
    dailyVolume: 9,
  },
  {
    label: 'newsletter through Mailchimp with custom DKIM',
    domain: 'example.org',
    ips: ['198.2.128.5', '198.2.179.44'],
    headerFrom: 'example.org',
    envelopeFrom: 'mail25.atl11.rsgsv.net',
    dkim: [pass('example.org', 'k1'), pass('mcsv.net', 'k1')],
    spf: [spf('mail25.atl11.rsgsv.net', 'pass')],
    evalDkim: 'pass',
    evalSpf: 'fail',
    dailyVolume: 80,
  },
  {
    label: 'status notices through Postmark, strictly aligned',
    domain: 'example.net',
    ips: ['50.31.156.6', '104.245.209.196'],
    headerFrom: 'example.net',
    envelopeFrom: 'example.net',
    dkim: [pass('example.net', 'pm')],
    spf: [spf('example.net', 'pass')],
    evalDkim: 'pass',
    evalSpf: 'pass',
    dailyVolume: 30,
  },
];

export interface SampleOptions {
  seed?: number;
  days?: number;
  /** The last day covered; defaults to yesterday (UTC). */
  endDate?: Date;
}

/**
 * Generates a few weeks of daily aggregate reports from several reporters about three
 * domains, with passing and failing services, IPv6 sources, forwarding and spoofing.
 */
export function generateSampleReports(options: SampleOptions = {}): AggregateReport[] {
  const random = createRandom(options.seed ?? 7489);
  const days = options.days ?? 28;
  const today = new Date();
  const end =
    options.endDate ??
    new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - 1));
  const reports: AggregateReport[] = [];

  for (let day = days - 1; day >= 0; day--) {
    const begin = new Date(
      Date.UTC(end.getUTCFullYear(), end.getUTCMonth(), end.getUTCDate() - day),
    );
    const dayEnd = new Date(begin.getTime() + 86_399_000);

    for (const [reporterIndex, reporter] of REPORTERS.entries()) {
      for (const [domain, policy] of Object.entries(SAMPLE_POLICIES)) {
        const records: ReportRecord[] = [];
        for (const sender of SAMPLE_SENDERS.filter((candidate) => candidate.domain === domain)) {
          for (const ip of sender.ips) {
            // Not every reporter sees every source every day.
            if (random() < 0.25) continue;
            const share = (0.5 + random()) / sender.ips.length;
            const count = Math.max(
              1,
              Math.round(sender.dailyVolume * share * (1 - reporterIndex * 0.15)),
            );
            records.push({
              sourceIp: ip,
              count,
              disposition:
                sender.evalDkim === 'pass' || sender.evalSpf === 'pass'
                  ? 'none'
                  : policyAction(policy.p),
              evalDkim: sender.evalDkim,
              evalSpf: sender.evalSpf,
              reasons: sender.reasons ?? [],
              headerFrom: sender.headerFrom,
              envelopeFrom: sender.envelopeFrom,
              envelopeTo: null,
              dkim: sender.dkim,
              spf: sender.spf,
              extensions: null,
            });
          }
        }
        if (records.length === 0) continue;

        const stamp = `${begin.toISOString().slice(0, 10).replace(/-/g, '')}`;
        reports.push({
          version: reporter.version,
          namespace: reporter.version === '2.0' ? 'urn:ietf:params:xml:ns:dmarc-2.0' : null,
          metadata: {
            orgName: reporter.orgName,
            email: reporter.email,
            extraContactInfo: null,
            reportId: `${stamp}.${domain}.${reporterIndex}.${Math.floor(random() * 1e9)}`,
            dateBegin: begin,
            dateEnd: dayEnd,
            errors: [],
            generator: null,
          },
          policy: {
            domain,
            adkim: 'r',
            aspf: 'r',
            p: policy.p,
            sp: policy.sp,
            np: null,
            pct: policy.pct,
            fo: null,
            testing: null,
            discoveryMethod: null,
          },
          extensions: null,
          warnings: [],
          records,
        });
      }
    }
  }
  return reports;
}

function policyAction(p: string): string {
  return p === 'none' ? 'none' : p;
}
