import { describe, expect, it } from 'vitest';

import {
  PROVIDERS,
  findProvider,
  getProvider,
  type ProviderQuery,
} from '../../src/analyze/providers.js';

// One realistic sighting per provider, with the evidence expected to match. Host names follow
// the shapes the providers use; the numeric parts are made up.
const SIGHTINGS: { id: string; query: ProviderQuery; evidence: string[] }[] = [
  {
    id: 'google-workspace',
    query: { ptr: 'mail-sor-f41.google.com', dkimDomains: ['example-com.20230601.gappssmtp.com'] },
    evidence: ['ptr', 'dkim'],
  },
  {
    id: 'microsoft-365',
    query: {
      ptr: 'mail-db8eur05on2101.outbound.protection.outlook.com',
      dkimDomains: ['contoso.onmicrosoft.com'],
    },
    evidence: ['ptr', 'dkim'],
  },
  {
    id: 'amazon-ses',
    query: {
      ptr: 'a8-30.smtp-out.amazonses.com',
      dkimDomains: ['amazonses.com'],
      spfDomains: ['us-east-1.amazonses.com'],
      envelopeFrom: '0100018f2c@us-east-1.amazonses.com',
    },
    evidence: ['ptr', 'dkim', 'spf', 'envelope-from'],
  },
  {
    id: 'sendgrid',
    query: { ptr: 'o1.ptr2625.sendgrid.net', dkimDomains: ['sendgrid.net'] },
    evidence: ['ptr', 'dkim'],
  },
  {
    id: 'mailgun',
    query: { ptr: 'm228-4.mailgun.net', dkimDomains: ['mailgun.org'] },
    evidence: ['ptr', 'dkim'],
  },
  {
    id: 'postmark',
    query: { ptr: 'mta12.mtasv.net', spfDomains: ['pm.mtasv.net'], dkimDomains: ['pm.mtasv.net'] },
    evidence: ['ptr', 'dkim', 'spf'],
  },
  {
    id: 'sparkpost',
    query: { ptr: 'mta-200-4.sparkpostmail.com', spfDomains: ['sparkpostmail.com'] },
    evidence: ['ptr', 'spf'],
  },
  {
    id: 'mailchimp',
    query: { ptr: 'mail180.atl221.mcsv.net', spfDomains: ['mail180.atl221.mcsv.net'] },
    evidence: ['ptr', 'spf'],
  },
  {
    id: 'mandrill',
    query: { ptr: 'mail135-8.atl141.mandrillapp.com', dkimDomains: ['mandrillapp.com'] },
    evidence: ['ptr', 'dkim'],
  },
  {
    id: 'brevo',
    query: { ptr: 'ac.mta.sendinblue.com', dkimDomains: ['sendinblue.com'] },
    evidence: ['ptr', 'dkim'],
  },
  {
    id: 'salesforce-marketing-cloud',
    query: { ptr: 'mta.s7.exacttarget.com', envelopeFrom: 'bounce-1_HTML-2@bounce.s7.exct.net' },
    evidence: ['ptr', 'envelope-from'],
  },
  {
    id: 'salesforce',
    query: { ptr: 'smtp10-ph2-sp4.mta.salesforce.com', spfDomains: ['bnc.salesforce.com'] },
    evidence: ['ptr', 'spf'],
  },
  {
    id: 'hubspot',
    query: { dkimDomains: ['hs01a.dkim.hubspotemail.net'], spfDomains: ['bf05x.hubspotemail.net'] },
    evidence: ['dkim', 'spf'],
  },
  {
    id: 'zendesk',
    query: { ptr: 'outbyoip5.pod13.iad1.zdsys.com', dkimDomains: ['zendesk.com'] },
    evidence: ['ptr', 'dkim'],
  },
  {
    id: 'freshdesk',
    query: { dkimDomains: ['freshdesk.com'], envelopeFrom: 'support@acme.freshdesk.com' },
    evidence: ['dkim', 'envelope-from'],
  },
  {
    id: 'mailjet',
    query: { ptr: 'o2.mailjet.com', spfDomains: ['bnc3.mailjet.com'] },
    evidence: ['ptr', 'spf'],
  },
  {
    id: 'zoho',
    query: { ptr: 'sender4-op-o11.zoho.com', dkimDomains: ['zoho.com'] },
    evidence: ['ptr', 'dkim'],
  },
  {
    id: 'klaviyo',
    query: { dkimDomains: ['klaviyomail.com'], spfDomains: ['send.klaviyomail.com'] },
    evidence: ['dkim', 'spf'],
  },
  {
    id: 'intercom',
    query: { dkimDomains: ['intercom-mail.com'], envelopeFrom: 'bounce@acme.intercom-mail.com' },
    evidence: ['dkim', 'envelope-from'],
  },
  {
    id: 'customer-io',
    query: { dkimDomains: ['customeriomail.com'], spfDomains: ['bounce.customeriomail.com'] },
    evidence: ['dkim', 'spf'],
  },
  {
    id: 'atlassian',
    query: { dkimDomains: ['atlassian.net'], envelopeFrom: 'jira@acme.atlassian.net' },
    evidence: ['dkim', 'envelope-from'],
  },
];

describe('PROVIDERS', () => {
  it('has a sighting test for every provider', () => {
    expect(SIGHTINGS.map((s) => s.id).sort()).toEqual(PROVIDERS.map((p) => p.id).sort());
  });

  it('has unique ids and complete fixes', () => {
    expect(new Set(PROVIDERS.map((p) => p.id)).size).toBe(PROVIDERS.length);
    for (const provider of PROVIDERS) {
      expect(provider.fixes.dkim.length, provider.id).toBeGreaterThan(20);
      expect(provider.fixes.returnPath.length, provider.id).toBeGreaterThan(20);
      expect(provider.fixes.spf.length, provider.id).toBeGreaterThan(20);
      if (provider.spfInclude)
        expect(provider.fixes.spf, provider.id).toContain(provider.spfInclude);
    }
  });

  it('writes PTR suffixes with a leading dot and domains without', () => {
    for (const provider of PROVIDERS) {
      for (const suffix of provider.ptrSuffixes)
        expect(suffix, provider.id).toMatch(/^\.[a-z0-9.-]+$/);
      for (const domain of [...provider.dkimDomains, ...provider.spfDomains]) {
        expect(domain, provider.id).toMatch(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/);
      }
    }
  });
});

describe('findProvider', () => {
  it.each(SIGHTINGS)('recognises $id', ({ id, query, evidence }) => {
    const match = findProvider(query);
    expect(match?.provider.id).toBe(id);
    expect(match?.evidence.sort()).toEqual([...evidence].sort());
    expect(getProvider(id)?.name).toBe(match?.provider.name);
  });

  it('returns null for an unknown source', () => {
    expect(findProvider({ ptr: 'mx1.example.net', dkimDomains: ['example.com'] })).toBeNull();
    expect(findProvider({})).toBeNull();
  });

  it('requires a PTR name below the suffix', () => {
    expect(findProvider({ ptr: 'google.com' })).toBeNull();
  });

  it('does not match a look-alike domain', () => {
    expect(findProvider({ dkimDomains: ['notsendgrid.net'] })).toBeNull();
    expect(findProvider({ dkimDomains: ['sendgrid.net.evil.example'] })).toBeNull();
  });

  it('prefers the provider with more evidence', () => {
    const match = findProvider({
      ptr: 'o1.ptr1.sendgrid.net',
      dkimDomains: ['amazonses.com', 'sendgrid.net'],
      spfDomains: ['sendgrid.net'],
    });
    expect(match?.provider.id).toBe('sendgrid');
    expect(match?.matched).toEqual({
      ptr: 'o1.ptr1.sendgrid.net',
      dkim: 'sendgrid.net',
      spf: 'sendgrid.net',
    });
  });

  it('breaks ties by list order', () => {
    const match = findProvider({ dkimDomains: ['sendgrid.net', 'amazonses.com'] });
    expect(match?.provider.id).toBe('amazon-ses');
  });

  it('normalizes case and the root dot', () => {
    expect(findProvider({ dkimDomains: ['SendGrid.NET.'] })?.provider.id).toBe('sendgrid');
  });
});
