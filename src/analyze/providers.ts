/**
 * Known sending platforms and how to recognise their mail in a DMARC report.
 *
 * Written from each provider's public setup documentation. Host names that a provider
 * generates per account (selectors, CNAME targets) are described, not listed, because they
 * differ for every customer.
 *
 * NOTE: providers rename their settings pages and sometimes their infrastructure domains. The
 * fix texts name the screens as documented when this list was written, so check them against
 * the provider's current documentation.
 */
import { domainOfAddress, normalizeDomain } from './org-domain.js';

/** A sending platform and the DNS changes that make its mail align with the customer's domain. */
export interface Provider {
  id: string;
  name: string;
  /** Reverse DNS (PTR) suffixes of the provider's outbound servers, with a leading dot. */
  ptrSuffixes: readonly string[];
  /** DKIM `d=` domains the provider signs with before the customer sets up their own key. */
  dkimDomains: readonly string[];
  /** Envelope-from (return-path) domains the provider uses by default, which SPF checks. */
  spfDomains: readonly string[];
  /** The SPF `include:` the provider publishes, or null when it is specific to each account. */
  spfInclude: string | null;
  fixes: {
    /** How to make the provider sign with the customer's own domain. */
    dkim: string;
    /** How to put the envelope-from (return-path) under the customer's domain. */
    returnPath: string;
    /** The change to the SPF record, or why none is needed. */
    spf: string;
  };
}

/** The kind of evidence that tied a source to a provider. */
export type ProviderEvidence = 'ptr' | 'dkim' | 'spf' | 'envelope-from';

/** Evidence about one source for `findProvider`. Every field is optional. */
export interface ProviderQuery {
  /** Forward-confirmed reverse DNS name of the source IP. */
  ptr?: string | null;
  /** DKIM `d=` domains of the record, preferably of passing signatures. */
  dkimDomains?: readonly (string | null)[];
  /** SPF-authenticated domains of the record, preferably of passing results. */
  spfDomains?: readonly (string | null)[];
  /** The envelope-from address or domain, when the reporter gives it. */
  envelopeFrom?: string | null;
}

/** A provider recognised from a source, with the evidence and the values that matched. */
export interface ProviderMatch {
  provider: Provider;
  evidence: ProviderEvidence[];
  /** The matched value per evidence kind, e.g. `{ dkim: 'sendgrid.net' }`. */
  matched: Partial<Record<ProviderEvidence, string>>;
}

/** Built-in providers, in the order used to break ties. */
export const PROVIDERS: readonly Provider[] = [
  {
    id: 'google-workspace',
    name: 'Google Workspace',
    ptrSuffixes: ['.google.com'],
    dkimDomains: ['gappssmtp.com'],
    spfDomains: [],
    spfInclude: '_spf.google.com',
    fixes: {
      dkim:
        'In the Google Admin console open Apps › Google Workspace › Gmail › Authenticate email, ' +
        'generate a key for the domain, publish it as the TXT record it shows ' +
        '(google._domainkey.<your domain> by default) and click Start authentication. ' +
        'Until then Gmail signs with a gappssmtp.com domain, which never aligns.',
      returnPath:
        'Nothing to change: Gmail uses the sending address itself as envelope sender, ' +
        'so SPF aligns once the SPF record authorizes Google.',
      spf: 'Add include:_spf.google.com to the SPF record of the From domain.',
    },
  },
  {
    id: 'microsoft-365',
    name: 'Microsoft 365 (Exchange Online)',
    ptrSuffixes: ['.outbound.protection.outlook.com'],
    dkimDomains: ['onmicrosoft.com'],
    spfDomains: [],
    spfInclude: 'spf.protection.outlook.com',
    fixes: {
      dkim:
        'In the Microsoft Defender portal open Email & collaboration › Policies & rules › ' +
        'Threat policies › Email authentication settings › DKIM, select the domain, publish ' +
        'the two CNAME records it lists for selector1._domainkey and selector2._domainkey, ' +
        'then turn on signing. Until then Exchange Online signs with the tenant’s ' +
        'onmicrosoft.com domain, which never aligns.',
      returnPath:
        'Nothing to change: Exchange Online uses the sending mailbox address as envelope ' +
        'sender, so SPF aligns once the SPF record authorizes Microsoft.',
      spf: 'Add include:spf.protection.outlook.com to the SPF record of the From domain.',
    },
  },
  {
    id: 'amazon-ses',
    name: 'Amazon SES',
    ptrSuffixes: ['.amazonses.com'],
    dkimDomains: ['amazonses.com'],
    spfDomains: ['amazonses.com'],
    spfInclude: 'amazonses.com',
    fixes: {
      dkim:
        'Verify the domain as an SES identity with Easy DKIM and publish the three CNAME ' +
        'records the console lists (<token>._domainkey.<your domain> → ' +
        '<token>.dkim.amazonses.com). SES then signs with your domain.',
      returnPath:
        'Set a custom MAIL FROM domain on the identity, a subdomain such as ' +
        'bounce.<your domain>, and publish its MX record (feedback-smtp.<region>.amazonses.com) ' +
        'and SPF TXT record. Without it SES uses a subdomain of amazonses.com, which never aligns.',
      spf:
        'Publish "v=spf1 include:amazonses.com ~all" on the custom MAIL FROM subdomain; ' +
        'the From domain’s own SPF record needs no change for SES.',
    },
  },
  {
    id: 'sendgrid',
    name: 'Twilio SendGrid',
    ptrSuffixes: ['.sendgrid.net'],
    dkimDomains: ['sendgrid.net'],
    spfDomains: ['sendgrid.net'],
    spfInclude: 'sendgrid.net',
    fixes: {
      dkim:
        'Run Domain Authentication (Settings › Sender Authentication) for the From domain with ' +
        'automated security on, and publish the three CNAME records it generates: ' +
        'em<number>.<your domain>, s1._domainkey and s2._domainkey, all pointing into sendgrid.net.',
      returnPath:
        'The em<number> CNAME from Domain Authentication becomes the return path, so bounces ' +
        'use a subdomain of yours; without it SendGrid uses sendgrid.net, which never aligns.',
      spf:
        'With automated security no change to your SPF record is needed; with it turned off, ' +
        'add include:sendgrid.net to the SPF record of the return-path subdomain.',
    },
  },
  {
    id: 'mailgun',
    name: 'Mailgun',
    ptrSuffixes: ['.mailgun.net'],
    dkimDomains: ['mailgun.org'],
    spfDomains: ['mailgun.org'],
    spfInclude: 'mailgun.org',
    fixes: {
      dkim:
        'Add the From domain (or a subdomain such as mg.<your domain>) under Sending › Domains ' +
        'and publish the DKIM TXT record it shows at <selector>._domainkey of that domain; ' +
        'send only From that domain or its parent.',
      returnPath:
        'Mailgun uses the verified sending domain as envelope sender, so send through a domain ' +
        'verified in Mailgun that sits under your From domain; the sandbox and shared ' +
        'mailgun.org domains never align.',
      spf: 'Publish "v=spf1 include:mailgun.org ~all" on the Mailgun sending domain.',
    },
  },
  {
    id: 'postmark',
    name: 'Postmark',
    ptrSuffixes: ['.mtasv.net'],
    dkimDomains: ['mtasv.net'],
    spfDomains: ['mtasv.net'],
    spfInclude: 'spf.mtasv.net',
    fixes: {
      dkim:
        'In Sender Signatures › DNS Settings for the domain, publish the DKIM TXT record ' +
        'Postmark shows (host <date>pm._domainkey) and verify it.',
      returnPath:
        'Add a custom Return-Path: a CNAME such as pm-bounces.<your domain> → pm.mtasv.net, ' +
        'verified in the same DNS Settings page. By default bounces use pm.mtasv.net, which never aligns.',
      spf:
        'No include is needed on your domain: SPF is checked on the Return-Path domain, ' +
        'which the CNAME delegates to Postmark. Add include:spf.mtasv.net only if you send ' +
        'with your own domain as Return-Path without that CNAME.',
    },
  },
  {
    id: 'sparkpost',
    name: 'SparkPost (Bird)',
    ptrSuffixes: ['.sparkpostmail.com'],
    dkimDomains: ['sparkpostmail.com'],
    spfDomains: ['sparkpostmail.com'],
    spfInclude: 'sparkpostmail.com',
    fixes: {
      dkim:
        'Add the From domain as a sending domain and publish the DKIM TXT record SparkPost ' +
        'generates (scph<MMYY>._domainkey.<your domain>), then verify it.',
      returnPath:
        'Set up a bounce domain: CNAME a subdomain such as bounces.<your domain> to ' +
        'sparkpostmail.com (EU accounts: eu.sparkpostmail.com) and make it the default bounce ' +
        'domain. By default bounces use sparkpostmail.com, which never aligns.',
      spf:
        'No include is needed when a CNAME bounce domain is used; otherwise add ' +
        'include:sparkpostmail.com to the SPF record of the bounce domain.',
    },
  },
  {
    id: 'mailchimp',
    name: 'Mailchimp',
    ptrSuffixes: ['.mcsv.net', '.rsgsv.net'],
    dkimDomains: ['mcsv.net'],
    spfDomains: ['mcsv.net', 'rsgsv.net'],
    spfInclude: 'servers.mcsv.net',
    fixes: {
      dkim:
        'Authenticate the domain in Mailchimp (Website › Domains) and publish the CNAME records ' +
        'it shows: k2._domainkey → dkim2.mcsv.net and k3._domainkey → dkim3.mcsv.net.',
      returnPath:
        'Mailchimp keeps the envelope sender on its own mcsv.net domain, so SPF cannot align; ' +
        'DMARC has to pass through the DKIM signature with your domain.',
      spf:
        'No include is needed for DMARC, because SPF is checked on Mailchimp’s bounce domain ' +
        'and cannot align with yours. An existing include:servers.mcsv.net can stay ' +
        'or go.',
    },
  },
  {
    id: 'mandrill',
    name: 'Mailchimp Transactional (Mandrill)',
    ptrSuffixes: ['.mandrillapp.com'],
    dkimDomains: ['mandrillapp.com'],
    spfDomains: ['mandrillapp.com'],
    spfInclude: 'spf.mandrillapp.com',
    fixes: {
      dkim:
        'Add the From domain under Settings › Domains › Sending domains and publish the DKIM ' +
        'CNAME records: mte1._domainkey → dkim1.mandrillapp.com and mte2._domainkey → ' +
        'dkim2.mandrillapp.com.',
      returnPath:
        'Set a custom return-path domain for the sending domain: a subdomain of yours with a ' +
        'CNAME to mandrillapp.com. By default bounces use mandrillapp.com, which never aligns.',
      spf: 'Add include:spf.mandrillapp.com to the SPF record of the From domain.',
    },
  },
  {
    id: 'brevo',
    name: 'Brevo (Sendinblue)',
    ptrSuffixes: ['.sendinblue.com', '.brevo.com'],
    dkimDomains: ['sendinblue.com', 'brevo.com'],
    spfDomains: ['sendinblue.com', 'brevo.com'],
    spfInclude: 'spf.brevo.com',
    fixes: {
      dkim:
        'Authenticate the domain under Senders, Domains & Dedicated IPs › Domains and publish ' +
        'the Brevo code and DKIM records it shows (older accounts: a TXT record at ' +
        'mail._domainkey.<your domain>).',
      returnPath:
        'On shared IPs Brevo keeps the envelope sender on its own domain, so SPF cannot align; ' +
        'DMARC has to pass through the DKIM signature with your domain.',
      spf:
        'Add include:spf.brevo.com (formerly include:spf.sendinblue.com) to the SPF record ' +
        'of the From domain.',
    },
  },
  {
    id: 'salesforce-marketing-cloud',
    name: 'Salesforce Marketing Cloud (ExactTarget)',
    ptrSuffixes: ['.exacttarget.com'],
    dkimDomains: ['exacttarget.com'],
    spfDomains: ['exacttarget.com', 'exct.net'],
    spfInclude: 'cust-spf.exacttarget.com',
    fixes: {
      dkim:
        'Set up the Sender Authentication Package or a Private Domain for the From domain, so ' +
        'Marketing Cloud signs with your domain instead of its shared exacttarget.com domains.',
      returnPath:
        'The Sender Authentication Package adds a bounce subdomain (bounce.<SAP subdomain>) with ' +
        'an MX record to Marketing Cloud; send From the SAP domain so the return path aligns.',
      spf: 'Add include:cust-spf.exacttarget.com to the SPF record of the From domain.',
    },
  },
  {
    id: 'salesforce',
    name: 'Salesforce (Sales and Service Cloud)',
    ptrSuffixes: ['.salesforce.com'],
    dkimDomains: ['salesforce.com'],
    spfDomains: ['salesforce.com'],
    spfInclude: '_spf.salesforce.com',
    fixes: {
      dkim:
        'In Setup › DKIM Keys create a key for the From domain with a selector, publish the ' +
        'CNAME records Salesforce shows, then activate the key.',
      returnPath:
        'Salesforce keeps the envelope sender on its own bounce domain, so SPF cannot align; ' +
        'DMARC has to pass through the DKIM signature with your domain.',
      spf: 'Add include:_spf.salesforce.com to the SPF record of the From domain.',
    },
  },
  {
    id: 'hubspot',
    name: 'HubSpot',
    ptrSuffixes: ['.hubspotemail.net'],
    dkimDomains: ['hubspotemail.net'],
    spfDomains: ['hubspotemail.net'],
    spfInclude: null,
    fixes: {
      dkim:
        'In Settings › Domains & URLs, connect the From domain as an email sending domain and ' +
        'publish the two DKIM CNAME records HubSpot generates for it.',
      returnPath:
        'On shared IPs HubSpot keeps the envelope sender on hubspotemail.net, so SPF cannot ' +
        'align; a dedicated IP lets HubSpot use an envelope domain under yours. Otherwise DMARC ' +
        'has to pass through the DKIM signature with your domain.',
      spf:
        'Add the SPF include HubSpot shows when connecting the sending domain; it is specific ' +
        'to the account.',
    },
  },
  {
    id: 'zendesk',
    name: 'Zendesk',
    ptrSuffixes: ['.zdsys.com', '.zendesk.com'],
    dkimDomains: ['zendesk.com', 'zdsys.com'],
    spfDomains: ['zendesk.com', 'zdsys.com'],
    spfInclude: 'mail.zendesk.com',
    fixes: {
      dkim:
        'Publish the CNAME records zendesk1._domainkey → zendesk1._domainkey.zendesk.com and ' +
        'zendesk2._domainkey → zendesk2._domainkey.zendesk.com, then turn on digital signing ' +
        'in Admin Center › Channels › Talk and email › Email.',
      returnPath:
        'Authorize Zendesk to send for the support address’s domain (the SPF include below); ' +
        'Zendesk then sends with your support address instead of its own.',
      spf: 'Add include:mail.zendesk.com to the SPF record of the support address’s domain.',
    },
  },
  {
    id: 'freshdesk',
    name: 'Freshdesk (Freshworks)',
    ptrSuffixes: ['.freshdesk.com', '.freshemail.io'],
    dkimDomains: ['freshdesk.com', 'freshemail.io'],
    spfDomains: ['freshdesk.com', 'freshemail.io'],
    spfInclude: 'email.freshdesk.com',
    fixes: {
      dkim:
        'In Admin › Channels › Email, open the DKIM settings for the support domain, publish ' +
        'the CNAME records Freshdesk generates and verify them.',
      returnPath:
        'Freshdesk sends with the support address once the domain is verified and its SPF ' +
        'record authorizes Freshdesk; no separate return-path record exists.',
      spf: 'Add include:email.freshdesk.com to the SPF record of the support address’s domain.',
    },
  },
  {
    id: 'mailjet',
    name: 'Mailjet',
    ptrSuffixes: ['.mailjet.com'],
    dkimDomains: ['mailjet.com'],
    spfDomains: ['mailjet.com'],
    spfInclude: 'spf.mailjet.com',
    fixes: {
      dkim:
        'Under Account settings › Domains & senders, authenticate the From domain and publish ' +
        'the DKIM TXT record at mailjet._domainkey.<your domain>.',
      returnPath:
        'Mailjet keeps the envelope sender on its own mailjet.com bounce domain, so SPF cannot ' +
        'align; DMARC has to pass through the DKIM signature with your domain.',
      spf: 'Add include:spf.mailjet.com to the SPF record of the From domain.',
    },
  },
  {
    id: 'zoho',
    name: 'Zoho Mail',
    ptrSuffixes: ['.zoho.com', '.zoho.eu', '.zoho.in', '.zohomail.com'],
    dkimDomains: ['zoho.com', 'zoho.eu', 'zoho.in', 'zohomail.com'],
    spfDomains: [],
    spfInclude: 'zoho.com',
    fixes: {
      dkim:
        'In the Zoho Mail Admin Console open Domains › <your domain> › Email configuration › ' +
        'DKIM, add a selector, publish the TXT record at <selector>._domainkey.<your domain>, ' +
        'then verify and enable it.',
      returnPath:
        'Nothing to change: Zoho Mail uses the sending mailbox address as envelope sender, ' +
        'so SPF aligns once the SPF record authorizes Zoho.',
      spf:
        'Add include:zoho.com to the SPF record of the From domain (include:zoho.eu or ' +
        'include:zoho.in for accounts in those data centres).',
    },
  },
  {
    id: 'klaviyo',
    name: 'Klaviyo',
    ptrSuffixes: ['.klaviyomail.com'],
    dkimDomains: ['klaviyomail.com'],
    spfDomains: ['klaviyomail.com'],
    spfInclude: null,
    fixes: {
      dkim:
        'Set up a branded sending domain (Settings › Email › Domains), a subdomain such as ' +
        'send.<your domain>, and publish the CNAME records Klaviyo lists for DKIM and the ' +
        'return path. Until then Klaviyo signs with klaviyomail.com, which never aligns.',
      returnPath:
        'The branded sending domain’s CNAME records make the return path a subdomain of yours.',
      spf:
        'No include on your own domain: the branded sending subdomain’s SPF record is served ' +
        'through Klaviyo’s CNAME.',
    },
  },
  {
    id: 'intercom',
    name: 'Intercom',
    ptrSuffixes: ['.intercom-mail.com'],
    dkimDomains: ['intercom-mail.com'],
    spfDomains: ['intercom-mail.com'],
    spfInclude: null,
    fixes: {
      dkim:
        'In Settings › Channels › Email › Domains & addresses, authenticate the domain and ' +
        'publish the DKIM CNAME record (intercom._domainkey.<your domain>) it shows.',
      returnPath:
        'Publish the custom return-path CNAME from the same screen; without it Intercom uses ' +
        'its shared intercom-mail.com domain, which never aligns.',
      spf: 'No include is needed: Intercom sets its own return path.',
    },
  },
  {
    id: 'customer-io',
    name: 'Customer.io',
    ptrSuffixes: ['.customeriomail.com'],
    dkimDomains: ['customeriomail.com'],
    spfDomains: ['customeriomail.com'],
    spfInclude: null,
    fixes: {
      dkim:
        'Add the From domain as a sending domain in Customer.io (Workspace Settings › Email) ' +
        'and publish the records it lists under the account subdomain cio<id>.<your domain>, ' +
        'including the DKIM record at <selector>._domainkey.cio<id>.<your domain>.',
      returnPath:
        'The same records make cio<id>.<your domain> the envelope sender, which aligns with ' +
        'the From domain in relaxed mode.',
      spf:
        'No include on your own domain: the SPF record lives on the cio<id> subdomain that ' +
        'Customer.io lists.',
    },
  },
  {
    id: 'atlassian',
    name: 'Atlassian Cloud (Jira, Confluence)',
    ptrSuffixes: ['.atlassian.net', '.atlassian.com'],
    dkimDomains: ['atlassian.net'],
    spfDomains: ['atlassian.net', 'atlassian.com'],
    spfInclude: '_spf.atlassian.net',
    fixes: {
      dkim:
        'In Atlassian Administration open Settings › Emails › Email domains, add the domain and ' +
        'publish the DNS records it lists, including the two DKIM CNAME records.',
      returnPath:
        'Publish the bounce CNAME record from the same list, so bounces use a subdomain of yours.',
      spf: 'Add include:_spf.atlassian.net to the SPF record of the From domain.',
    },
  },
];

const providersById = new Map(PROVIDERS.map((provider) => [provider.id, provider]));
const providerOrder = new Map(PROVIDERS.map((provider, index) => [provider.id, index]));

/** Looks up a built-in provider by id. */
export function getProvider(id: string): Provider | undefined {
  return providersById.get(id);
}

type SuffixIndex = Map<string, Provider>;

function buildIndex(pick: (provider: Provider) => readonly string[]): SuffixIndex {
  const index: SuffixIndex = new Map();
  for (const provider of PROVIDERS) {
    for (const suffix of pick(provider)) {
      const key = suffix.replace(/^\./, '');
      if (!index.has(key)) index.set(key, provider);
    }
  }
  return index;
}

const ptrIndex = buildIndex((provider) => provider.ptrSuffixes);
const dkimIndex = buildIndex((provider) => provider.dkimDomains);
const spfIndex = buildIndex((provider) => provider.spfDomains);

/**
 * Finds the provider whose domain is the name itself or a parent of it, walking the labels
 * from the full name upwards, so a lookup costs one map probe per label.
 */
function lookupSuffix(
  index: SuffixIndex,
  name: string | null,
  requireSubdomain: boolean,
): { provider: Provider; suffix: string } | null {
  if (name === null) return null;
  let candidate = name;
  let first = true;
  for (;;) {
    if (!(first && requireSubdomain)) {
      const provider = index.get(candidate);
      if (provider) return { provider, suffix: candidate };
    }
    first = false;
    const dot = candidate.indexOf('.');
    if (dot < 0) return null;
    candidate = candidate.slice(dot + 1);
  }
}

function compareMatches(a: ProviderMatch, b: ProviderMatch): number {
  const byEvidence = b.evidence.length - a.evidence.length;
  if (byEvidence !== 0) return byEvidence;
  return (providerOrder.get(a.provider.id) ?? 0) - (providerOrder.get(b.provider.id) ?? 0);
}

/**
 * Recognises the provider behind a source from its forward-confirmed PTR name, DKIM `d=`
 * domains, SPF domains and envelope-from. When several providers match, the one with the most
 * kinds of evidence wins, then the one listed first in `PROVIDERS`.
 */
export function findProvider(query: ProviderQuery): ProviderMatch | null {
  const found = new Map<string, ProviderMatch>();
  const note = (provider: Provider, evidence: ProviderEvidence, value: string) => {
    let match = found.get(provider.id);
    if (!match) {
      match = { provider, evidence: [], matched: {} };
      found.set(provider.id, match);
    }
    if (!match.evidence.includes(evidence)) {
      match.evidence.push(evidence);
      match.matched[evidence] = value;
    }
  };

  // A PTR name is a host, so it must sit below the suffix (mail.google.com, not google.com).
  const ptr = lookupSuffix(ptrIndex, normalizeDomain(query.ptr), true);
  if (ptr) note(ptr.provider, 'ptr', normalizeDomain(query.ptr) as string);

  for (const domain of query.dkimDomains ?? []) {
    const hit = lookupSuffix(dkimIndex, normalizeDomain(domain), false);
    if (hit) note(hit.provider, 'dkim', normalizeDomain(domain) as string);
  }
  for (const domain of query.spfDomains ?? []) {
    const hit = lookupSuffix(spfIndex, normalizeDomain(domain), false);
    if (hit) note(hit.provider, 'spf', normalizeDomain(domain) as string);
  }
  const envelopeDomain = domainOfAddress(query.envelopeFrom);
  const envelope = lookupSuffix(spfIndex, envelopeDomain, false);
  if (envelope) note(envelope.provider, 'envelope-from', envelopeDomain as string);

  let best: ProviderMatch | null = null;
  for (const match of found.values()) {
    if (best === null || compareMatches(match, best) < 0) best = match;
  }
  return best;
}
