import { describe, expect, it } from 'vitest';

import type { Attribution } from '../../src/analyze/attribution.js';
import { diagnoseRecord, type DiagnosedRecord } from '../../src/analyze/diagnosis.js';
import { getProvider } from '../../src/analyze/providers.js';

const BILLING: Attribution = {
  kind: 'service',
  service: 'billing',
  rule: 'ip 203.0.113.0/24',
  ruleKind: 'ip',
  confidence: 'high',
};
const UNATTRIBUTED: Attribution = { kind: 'unattributed', rule: null, confidence: null };

function record(overrides: Partial<DiagnosedRecord>): DiagnosedRecord {
  return {
    sourceIp: '203.0.113.9',
    evalDkim: 'fail',
    evalSpf: 'fail',
    reasons: [],
    headerFrom: 'example.com',
    envelopeFrom: null,
    dkim: [],
    spf: [],
    ...overrides,
  };
}

function codes(result: ReturnType<typeof diagnoseRecord>): string[] {
  return result.diagnoses.map((diagnosis) => diagnosis.code);
}

describe('diagnoseRecord', () => {
  it('passes on aligned DKIM', () => {
    const result = diagnoseRecord(
      record({
        dkim: [{ domain: 'mail.example.com', selector: 's1', result: 'pass', humanResult: null }],
      }),
      { attribution: BILLING },
    );
    expect(result.dmarcPass).toBe(true);
    expect(result.dkimAligned).toBe(true);
    expect(codes(result)).toEqual(['pass']);
    expect(result.diagnoses[0].summary).toContain('d=mail.example.com');
    expect(result.diagnoses[0].fix).toBeNull();
  });

  it('passes on aligned SPF', () => {
    const result = diagnoseRecord(
      record({
        spf: [{ domain: 'bounces.example.com', scope: 'mfrom', result: 'pass', humanResult: null }],
      }),
    );
    expect(codes(result)).toEqual(['pass']);
    expect(result.spfAligned).toBe(true);
  });

  it('trusts the reporter’s pass without raw results', () => {
    const result = diagnoseRecord(record({ evalDkim: 'pass' }));
    expect(result.dmarcPass).toBe(true);
    expect(result.dkimAligned).toBe(false);
    expect(result.diagnoses[0].summary).toMatch(/reporter/);
  });

  it('explains a provider signing with its own domain', () => {
    const result = diagnoseRecord(
      record({
        dkim: [{ domain: 'sendgrid.net', selector: 'smtpapi', result: 'pass', humanResult: null }],
        spf: [{ domain: 'sendgrid.net', scope: 'mfrom', result: 'pass', humanResult: null }],
        envelopeFrom: 'bounces+1-ab=example.com@sendgrid.net',
      }),
      { attribution: BILLING },
    );
    const sendgrid = getProvider('sendgrid')!;
    expect(result.dmarcPass).toBe(false);
    expect(result.provider).toEqual({ id: 'sendgrid', name: sendgrid.name });
    expect(codes(result)).toEqual(['dkim-provider-domain', 'spf-provider-domain']);
    expect(result.diagnoses[0].summary).toBe(
      `DKIM passes for d=sendgrid.net, ${sendgrid.name}’s domain, instead of example.com`,
    );
    expect(result.diagnoses[0].fix).toBe(sendgrid.fixes.dkim);
    expect(result.diagnoses[1].fix).toBe(sendgrid.fixes.returnPath);
  });

  it('explains a missing signature and an IP outside SPF', () => {
    const result = diagnoseRecord(
      record({
        spf: [{ domain: 'example.com', scope: 'mfrom', result: 'softfail', humanResult: null }],
      }),
      { attribution: BILLING },
    );
    expect(codes(result)).toEqual(['no-dkim', 'spf-fail']);
    expect(result.diagnoses[1].summary).toBe(
      'SPF softfail for example.com: 203.0.113.9 is not in its SPF record',
    );
    expect(result.diagnoses[1].fix).toContain('203.0.113.9');
    expect(result.provider).toBeNull();
  });

  it('gives the provider’s SPF fix when the IP is not authorized', () => {
    const result = diagnoseRecord(
      record({
        sourceIp: '40.107.22.1',
        spf: [{ domain: 'example.com', scope: 'mfrom', result: 'fail', humanResult: null }],
        dkim: [
          {
            domain: 'contoso.onmicrosoft.com',
            selector: 'selector1',
            result: 'pass',
            humanResult: null,
          },
        ],
      }),
      { ptr: 'mail-db8eur05on2101.outbound.protection.outlook.com' },
    );
    const microsoft = getProvider('microsoft-365')!;
    expect(codes(result)).toEqual(['dkim-provider-domain', 'spf-fail']);
    expect(result.diagnoses[0].fix).toBe(microsoft.fixes.dkim);
    expect(result.diagnoses[1].fix).toBe(microsoft.fixes.spf);
  });

  it('explains a broken signature', () => {
    const result = diagnoseRecord(
      record({
        dkim: [{ domain: 'example.com', selector: 's1', result: 'fail', humanResult: null }],
        spf: [{ domain: 'example.com', scope: 'mfrom', result: 'fail', humanResult: null }],
      }),
      { attribution: BILLING },
    );
    expect(codes(result)).toEqual(['dkim-fail', 'spf-fail']);
    expect(result.diagnoses[0].summary).toBe('DKIM fail for d=example.com s=s1');
    expect(result.diagnoses[0].fix).toContain('s1._domainkey.example.com');
  });

  it('explains strict alignment mismatches', () => {
    const input = record({
      dkim: [{ domain: 'mail.example.com', selector: 's1', result: 'pass', humanResult: null }],
      spf: [{ domain: 'bounces.example.com', scope: 'mfrom', result: 'pass', humanResult: null }],
    });
    const relaxed = diagnoseRecord(input, { attribution: BILLING });
    expect(codes(relaxed)).toEqual(['pass']);

    const strict = diagnoseRecord(input, { adkim: 's', aspf: 's', attribution: BILLING });
    expect(strict.dmarcPass).toBe(false);
    expect(strict.alignment.dkim.relaxed).toBe(true);
    expect(codes(strict)).toEqual(['dkim-strict-mismatch', 'spf-strict-mismatch']);
  });

  it.each(['forwarded', 'local_policy', 'trusted_forwarder', 'mailing_list', 'Mailing_List '])(
    'recognises the %s override as forwarding',
    (type) => {
      const result = diagnoseRecord(
        record({ reasons: [{ type, comment: null }], sourceIp: '192.0.2.1' }),
        { attribution: UNATTRIBUTED },
      );
      expect(codes(result)).toEqual(['forwarded']);
      expect(result.diagnoses[0].fix).toBeNull();
    },
  );

  it('recognises ARC in a reason comment', () => {
    const result = diagnoseRecord(
      record({ reasons: [{ type: 'other', comment: 'arc=pass as.1.google.com=pass' }] }),
      { attribution: UNATTRIBUTED },
    );
    expect(codes(result)).toEqual(['forwarded']);
  });

  it('does not read sampled_out as forwarding', () => {
    const result = diagnoseRecord(record({ reasons: [{ type: 'sampled_out', comment: null }] }), {
      attribution: UNATTRIBUTED,
    });
    expect(codes(result)).toEqual(['spoofing']);
  });

  it('calls an unknown failing source spoofing', () => {
    const result = diagnoseRecord(
      record({
        sourceIp: '192.0.2.66',
        spf: [{ domain: 'example.com', scope: 'mfrom', result: 'fail', humanResult: null }],
      }),
      { attribution: UNATTRIBUTED },
    );
    expect(codes(result)).toEqual(['spoofing']);
    expect(result.diagnoses[0].summary).toBe(
      'Unknown source 192.0.2.66 fails DMARC for example.com',
    );
  });

  it('treats a recognised provider as known without attribution', () => {
    const result = diagnoseRecord(
      record({ dkim: [{ domain: 'mcsv.net', selector: 'k1', result: 'pass', humanResult: null }] }),
    );
    expect(result.provider?.id).toBe('mailchimp');
    expect(codes(result)).toEqual(['dkim-provider-domain', 'spf-fail']);
  });

  it('uses the provider of a provider attribution', () => {
    const result = diagnoseRecord(record({}), {
      attribution: {
        kind: 'provider',
        provider: 'postmark',
        providerName: 'Postmark',
        rule: 'provider postmark (ptr x.mtasv.net)',
        confidence: 'medium',
      },
    });
    expect(result.provider?.id).toBe('postmark');
    expect(result.diagnoses[0].fix).toBe(getProvider('postmark')!.fixes.dkim);
  });
});
