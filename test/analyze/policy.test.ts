import { describe, expect, it } from 'vitest';

import {
  comparePolicyRequests,
  expectedDispositions,
  formatDmarcRecord,
  nextPolicyRequest,
  parseDmarcRecord,
  policyRequestFor,
} from '../../src/analyze/policy.js';

describe('parseDmarcRecord', () => {
  it('reads every evaluated tag', () => {
    const policy = parseDmarcRecord(
      'v=DMARC1; p=Quarantine; sp=reject; np=reject; pct=25; t=n; adkim=s; aspf=r; fo=1; rua=mailto:d@example.com',
      'Example.com.',
    );
    expect(policy).toEqual({
      domain: 'example.com',
      p: 'quarantine',
      sp: 'reject',
      np: 'reject',
      pct: 25,
      t: 'n',
      adkim: 's',
      aspf: 'r',
      fo: '1',
    });
  });

  it('leaves absent tags null', () => {
    const policy = parseDmarcRecord('v=DMARC1;p=none', 'example.com');
    expect(policy.sp).toBeNull();
    expect(policy.pct).toBeNull();
    expect(policy.t).toBeNull();
  });

  it.each([
    ['p=reject', /v=DMARC1/],
    ['v=DMARC1; sp=reject', /p= is missing/],
    ['v=DMARC1; p=block', /p=block is invalid/],
    ['v=DMARC1; p=none; pct=150', /pct=150/],
    ['v=DMARC1; p=none; adkim=x', /adkim=x/],
    ['v=DMARC1; p=none; t=maybe', /t=maybe/],
    ['v=DMARC1; p', /expected name=value/],
  ])('rejects %s', (text, message) => {
    expect(() => parseDmarcRecord(text, 'example.com')).toThrow(message);
  });
});

describe('formatDmarcRecord', () => {
  it('writes the record in tag order', () => {
    const policy = parseDmarcRecord('v=DMARC1; aspf=s; p=reject; pct=50; sp=none', 'example.com');
    expect(formatDmarcRecord(policy)).toBe(
      '_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=none; pct=50; aspf=s"',
    );
  });
});

describe('policy steps', () => {
  it('orders requests', () => {
    expect(nextPolicyRequest('none')).toBe('quarantine');
    expect(nextPolicyRequest('quarantine')).toBe('reject');
    expect(nextPolicyRequest('reject')).toBeNull();
    expect(comparePolicyRequests('none', 'reject')).toBeLessThan(0);
  });

  it('picks p or sp by header From', () => {
    const policy = parseDmarcRecord('v=DMARC1; p=reject; sp=quarantine', 'example.com');
    expect(policyRequestFor(policy, 'example.com')).toBe('reject');
    expect(policyRequestFor(policy, 'news.Example.com')).toBe('quarantine');
    expect(policyRequestFor(policy, 'example.org')).toBeNull();
    expect(policyRequestFor(policy, 'badexample.com')).toBeNull();

    const withoutSp = parseDmarcRecord('v=DMARC1; p=reject', 'example.com');
    expect(policyRequestFor(withoutSp, 'news.example.com')).toBe('reject');
  });
});

describe('expectedDispositions', () => {
  it('applies the request to every message by default', () => {
    expect(expectedDispositions(40, 'reject', { pct: null, t: null })).toEqual({
      none: 0,
      quarantine: 0,
      reject: 40,
    });
  });

  it('splits by pct with the next lower request for the rest', () => {
    expect(expectedDispositions(200, 'reject', { pct: 25, t: null })).toEqual({
      none: 0,
      quarantine: 150,
      reject: 50,
    });
    expect(expectedDispositions(10, 'quarantine', { pct: 10, t: null })).toEqual({
      none: 9,
      quarantine: 1,
      reject: 0,
    });
  });

  it('applies the next lower request under t=y', () => {
    expect(expectedDispositions(8, 'reject', { pct: 50, t: 'y' })).toEqual({
      none: 0,
      quarantine: 8,
      reject: 0,
    });
    expect(expectedDispositions(8, 'quarantine', { pct: null, t: 'y' }).none).toBe(8);
  });
});
