import { describe, expect, it } from 'vitest';

import {
  formatIpAddress,
  networkOf,
  parseIpAddress,
  parseIpRange,
  reverseDnsName,
} from '../../src/analyze/ip-range.js';

describe('parseIpAddress', () => {
  it('reads IPv4 as a 32-bit number', () => {
    expect(parseIpAddress('203.0.113.9')).toEqual({ family: 4, value: 0xcb007109 });
    expect(parseIpAddress('255.255.255.255')).toEqual({ family: 4, value: 0xffffffff });
  });

  it('reads an IPv4-mapped IPv6 address as IPv4', () => {
    expect(parseIpAddress('::ffff:203.0.113.9')).toEqual({ family: 4, value: 0xcb007109 });
    expect(parseIpAddress('::ffff:cb00:7109')).toEqual({ family: 4, value: 0xcb007109 });
  });

  it('reads IPv6 as a bigint', () => {
    expect(parseIpAddress('2001:db8::1')).toEqual({
      family: 6,
      value: 0x20010db8000000000000000000000001n,
    });
  });

  it('rejects shorthand and garbage', () => {
    expect(parseIpAddress('127.1')).toBeNull();
    expect(parseIpAddress('0x7f.0.0.1')).toBeNull();
    expect(parseIpAddress('mail.example.com')).toBeNull();
    expect(parseIpAddress('')).toBeNull();
    expect(parseIpAddress(null)).toBeNull();
  });
});

describe('parseIpRange', () => {
  it('reads IPv4 and IPv6 ranges', () => {
    expect(parseIpRange('203.0.113.0/24')).toEqual({ family: 4, network: 0xcb0071, prefix: 24 });
    expect(parseIpRange('2001:db8:1::/48')).toEqual({
      family: 6,
      network: 0x20010db80001n,
      prefix: 48,
    });
    expect(parseIpRange('0.0.0.0/0')).toEqual({ family: 4, network: 0, prefix: 0 });
  });

  it('reads a bare address as one host', () => {
    expect(parseIpRange('198.51.100.7')).toMatchObject({ family: 4, prefix: 32 });
    expect(parseIpRange('2001:db8::1')).toMatchObject({ family: 6, prefix: 128 });
  });

  it('reads a mapped IPv6 range as IPv4', () => {
    expect(parseIpRange('::ffff:192.0.2.0/120')).toEqual(parseIpRange('192.0.2.0/24'));
  });

  it.each(['300.1.2.0/24', '10.0.0.0/33', '2001:db8::/129', '10.0.0.0/', '10.0.0.0/a', 'x/8'])(
    'rejects %s',
    (text) => {
      expect(() => parseIpRange(text)).toThrow(`invalid CIDR "${text}"`);
    },
  );

  it('rejects host bits past the prefix', () => {
    expect(() => parseIpRange('192.0.2.7/24')).toThrow(/bits set past the \/24 prefix/);
    expect(() => parseIpRange('2001:db8::1/64')).toThrow(/bits set past the \/64 prefix/);
  });
});

describe('networkOf', () => {
  it('keeps the prefix bits', () => {
    const address = parseIpAddress('203.0.113.9')!;
    expect(networkOf(address, 24)).toBe(0xcb0071);
    expect(networkOf(address, 0)).toBe(0);
    expect(networkOf(address, 32)).toBe(0xcb007109);
  });
});

describe('formatIpAddress', () => {
  it('writes IPv4, mapped IPv4 and IPv6', () => {
    expect(formatIpAddress(parseIpAddress('203.0.113.9')!)).toBe('203.0.113.9');
    expect(formatIpAddress(parseIpAddress('::ffff:203.0.113.9')!)).toBe('203.0.113.9');
    expect(formatIpAddress(parseIpAddress('2001:DB8:0::25')!)).toBe('2001:db8::25');
  });
});

describe('reverseDnsName', () => {
  it('builds in-addr.arpa and ip6.arpa names', () => {
    expect(reverseDnsName(parseIpAddress('203.0.113.9')!)).toBe('9.113.0.203.in-addr.arpa');
    expect(reverseDnsName(parseIpAddress('::ffff:203.0.113.9')!)).toBe('9.113.0.203.in-addr.arpa');
    expect(reverseDnsName(parseIpAddress('2001:db8::25')!)).toBe(
      '5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
  });
});
