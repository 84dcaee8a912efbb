/**
 * IP addresses and CIDR ranges as plain integers, so that matching a source against many
 * ranges costs a few shifts and map probes. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`)
 * are read as the IPv4 address they carry, because reporters write the same sender both ways.
 */
import ipaddr from 'ipaddr.js';

/** An address as an integer: a 32-bit number for IPv4, a 128-bit bigint for IPv6. */
export type IpAddress = { family: 4; value: number } | { family: 6; value: bigint };

/** A CIDR range: the network address as an integer and its prefix length. */
export type IpRange =
  { family: 4; network: number; prefix: number } | { family: 6; network: bigint; prefix: number };

const MAPPED_PREFIX = 96;

function toIpAddress(address: ipaddr.IPv4 | ipaddr.IPv6): IpAddress {
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return toIpAddress((address as ipaddr.IPv6).toIPv4Address());
  }

  const bytes = address.toByteArray();
  if (address.kind() === 'ipv4') {
    return {
      family: 4,
      value: ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0,
    };
  }

  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return { family: 6, value };
}

/** Parses an IPv4 address in dotted-quad form or an IPv6 address; null when invalid. */
export function parseIpAddress(text: string | null | undefined): IpAddress | null {
  if (text == null) return null;
  const trimmed = text.trim();
  // Test IPv6 first: ipaddr.js 2.x spends about 15 µs rejecting an IPv6 text as IPv4.
  if (trimmed.includes(':')) {
    return ipaddr.IPv6.isValid(trimmed) ? toIpAddress(ipaddr.IPv6.parse(trimmed)) : null;
  }
  // ipaddr.js also reads shorthand such as `127.1` or hex octets, which no report contains.
  if (ipaddr.IPv4.isValidFourPartDecimal(trimmed)) return toIpAddress(ipaddr.IPv4.parse(trimmed));
  return null;
}

/** Keeps the first `prefix` bits of an address, the key under which ranges are indexed. */
export function networkOf(address: IpAddress, prefix: number): number | bigint {
  if (address.family === 4) {
    return prefix === 0 ? 0 : address.value >>> (32 - prefix);
  }
  return address.value >> BigInt(128 - prefix);
}

/**
 * Parses a CIDR range, or a bare address as a single-host range.
 * @throws Error with a message naming the text and what is wrong with it
 */
export function parseIpRange(text: string): IpRange {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const addressText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefixText = slash < 0 ? null : trimmed.slice(slash + 1);

  const address = parseIpAddress(addressText);
  if (address === null || (prefixText !== null && !/^\d{1,3}$/.test(prefixText))) {
    throw new Error(`invalid CIDR "${text}"`);
  }

  // A mapped IPv6 range such as ::ffff:192.0.2.0/120 covers IPv4 addresses, read as IPv4.
  const isMapped = address.family === 4 && addressText.includes(':');
  const maxPrefix = address.family === 4 ? 32 : 128;
  let prefix = prefixText === null ? maxPrefix : Number(prefixText);
  if (isMapped && prefixText !== null) prefix -= MAPPED_PREFIX;
  if (prefix < 0 || prefix > maxPrefix) throw new Error(`invalid CIDR "${text}"`);

  const network = networkOf(address, prefix);
  const isNetworkAddress =
    address.family === 4
      ? prefix === 32 || (address.value & (2 ** (32 - prefix) - 1)) === 0
      : (address.value & ((1n << BigInt(128 - prefix)) - 1n)) === 0n;
  if (!isNetworkAddress) {
    throw new Error(
      `invalid CIDR "${text}": the address has bits set past the /${prefixText} prefix`,
    );
  }

  return address.family === 4
    ? { family: 4, network: network as number, prefix }
    : { family: 6, network: network as bigint, prefix };
}

/** Writes an address back as text: dotted quad for IPv4, so a mapped address loses its prefix. */
export function formatIpAddress(address: IpAddress): string {
  if (address.family === 4) {
    const value = address.value;
    return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
  }
  const bytes: number[] = [];
  for (let shift = 120n; shift >= 0n; shift -= 8n)
    bytes.push(Number((address.value >> shift) & 255n));
  return ipaddr.fromByteArray(bytes).toString();
}

/** Returns the name under which an address's PTR records live (RFC 1035 §3.5, RFC 3596 §2.5). */
export function reverseDnsName(address: IpAddress): string {
  if (address.family === 4) {
    return `${formatIpAddress(address).split('.').reverse().join('.')}.in-addr.arpa`;
  }
  const nibbles = address.value.toString(16).padStart(32, '0').split('').reverse();
  return `${nibbles.join('.')}.ip6.arpa`;
}
