import dns2 from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  MemoryReverseDnsCache,
  ReverseDnsLookup,
  createSystemResolver,
  type ReverseDnsResult,
} from '../../src/analyze/enrichment.js';

const { Packet } = dns2;
// dns2 3.0 has RCODE at run time but not in its type declarations.
const RCODE = (Packet as unknown as { RCODE: Record<'NXDOMAIN' | 'SERVFAIL', number> }).RCODE;

// The zone the test server serves; `delay` is the time in milliseconds before it responds.
const PTR: Record<string, string[] | 'nxdomain' | 'servfail' | { delay: number; names: string[] }> =
  {
    '9.113.0.203.in-addr.arpa': ['mail.billing.example.com'],
    '10.113.0.203.in-addr.arpa': ['spoof.example.net'],
    '11.113.0.203.in-addr.arpa': 'nxdomain',
    '12.113.0.203.in-addr.arpa': { delay: 1500, names: ['slow.example.com'] },
    '13.113.0.203.in-addr.arpa': 'servfail',
    '14.113.0.203.in-addr.arpa': ['a.example.net', 'b.example.net'],
    '15.113.0.203.in-addr.arpa': ['slow-forward.example.com'],
    '16.113.0.203.in-addr.arpa': { delay: 100, names: ['bit-slow.example.com'] },
    '5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa': ['mx.example.com'],
  };
const A: Record<string, string[] | { delay: number; addresses: string[] }> = {
  'mail.billing.example.com': ['203.0.113.9'],
  'spoof.example.net': ['198.51.100.1'],
  'a.example.net': ['198.51.100.2'],
  'b.example.net': ['203.0.113.14'],
  'slow-forward.example.com': { delay: 1500, addresses: ['203.0.113.15'] },
  'bit-slow.example.com': ['203.0.113.16'],
};
const AAAA: Record<string, string[]> = { 'mx.example.com': ['2001:db8::25'] };

let server: ReturnType<typeof dns2.createUDPServer>;
let port: number;
const queries: string[] = [];
// Queries for 192.0.2.x in flight at the server, to measure the client's queue.
let inFlight = 0;
let maxInFlight = 0;

function answer(request: dns2.Packet, send: (response: dns2.Packet) => void): void {
  const [question] = request.questions;
  const name = question.name.toLowerCase();
  queries.push(`${question.type}:${name}`);
  const response = Packet.createResponseFromRequest(request);

  let delay = 0;
  if (question.type === Packet.TYPE.PTR) {
    let entry = PTR[name];
    // 192.0.2.x addresses exist only to measure the queue: no PTR, after 50 ms.
    if (name.endsWith('.2.0.192.in-addr.arpa')) entry = { delay: 50, names: [] };
    if (entry === undefined || entry === 'nxdomain') response.header.rcode = RCODE.NXDOMAIN;
    else if (entry === 'servfail') response.header.rcode = RCODE.SERVFAIL;
    else {
      const names = Array.isArray(entry) ? entry : entry.names;
      delay = Array.isArray(entry) ? 0 : entry.delay;
      for (const domain of names) {
        response.answers.push({
          name,
          type: Packet.TYPE.PTR,
          class: Packet.CLASS.IN,
          ttl: 60,
          domain,
        } as dns2.Packet.Resource);
      }
    }
  } else if (question.type === Packet.TYPE.A) {
    const entry = A[name];
    const addresses = entry === undefined ? [] : Array.isArray(entry) ? entry : entry.addresses;
    delay = entry !== undefined && !Array.isArray(entry) ? entry.delay : 0;
    if (entry === undefined) response.header.rcode = RCODE.NXDOMAIN;
    for (const address of addresses) {
      response.answers.push({
        name,
        type: Packet.TYPE.A,
        class: Packet.CLASS.IN,
        ttl: 60,
        address,
      } as dns2.Packet.Resource);
    }
  } else if (question.type === Packet.TYPE.AAAA) {
    for (const address of AAAA[name] ?? []) {
      response.answers.push({
        name,
        type: Packet.TYPE.AAAA,
        class: Packet.CLASS.IN,
        ttl: 60,
        address,
      } as dns2.Packet.Resource);
    }
  }

  const isQueueProbe = name.endsWith('.2.0.192.in-addr.arpa');
  if (isQueueProbe) {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
  }
  setTimeout(() => {
    if (isQueueProbe) inFlight--;
    send(response);
  }, delay);
}

beforeAll(async () => {
  server = dns2.createUDPServer((request, send) => answer(request, send as never));
  await server.listen(0, '127.0.0.1');
  port = server.address().port;
});

afterAll(() => {
  server.close();
});

function lookupWith(
  options: { timeoutMs?: number; concurrency?: number; cache?: MemoryReverseDnsCache | null } = {},
) {
  const timeoutMs = options.timeoutMs ?? 800;
  return new ReverseDnsLookup({
    resolver: createSystemResolver({ servers: [`127.0.0.1:${port}`], timeoutMs }),
    timeoutMs,
    concurrency: options.concurrency,
    cache: options.cache,
  });
}

describe('ReverseDnsLookup against a DNS server on loopback', () => {
  it('confirms a PTR name that resolves back', async () => {
    const result = await lookupWith().lookup('203.0.113.9');
    expect(result).toEqual({
      ip: '203.0.113.9',
      state: 'ok',
      ptr: 'mail.billing.example.com',
      names: ['mail.billing.example.com'],
      error: null,
    });
  });

  it('rejects a PTR name pointing elsewhere', async () => {
    const result = await lookupWith().lookup('203.0.113.10');
    expect(result.state).toBe('not-confirmed');
    expect(result.ptr).toBeNull();
    expect(result.names).toEqual(['spoof.example.net']);
  });

  it('reports a missing PTR record', async () => {
    const result = await lookupWith().lookup('203.0.113.11');
    expect(result.state).toBe('no-ptr');
    expect(result.error).toBeNull();
  });

  it('times out on a slow PTR answer', async () => {
    const started = Date.now();
    const result = await lookupWith({ timeoutMs: 300 }).lookup('203.0.113.12');
    const elapsed = Date.now() - started;
    expect(result.state).toBe('timeout');
    expect(result.error).toBe('ETIMEOUT');
    expect(elapsed).toBeLessThan(1200);
  });

  it('waits for an answer within the timeout', async () => {
    const result = await lookupWith({ timeoutMs: 800 }).lookup('203.0.113.16');
    expect(result.state).toBe('ok');
    expect(result.ptr).toBe('bit-slow.example.com');
  });

  it('times out on a slow forward answer', async () => {
    const result = await lookupWith({ timeoutMs: 300 }).lookup('203.0.113.15');
    expect(result.state).toBe('timeout');
    expect(result.names).toEqual([]);
  });

  it('reports a server failure as error', async () => {
    const result = await lookupWith().lookup('203.0.113.13');
    expect(result.state).toBe('error');
    expect(result.error).toBe('ESERVFAIL');
  });

  it('tries every PTR name', async () => {
    const result = await lookupWith().lookup('203.0.113.14');
    expect(result.state).toBe('ok');
    expect(result.ptr).toBe('b.example.net');
    expect(result.names).toEqual(['a.example.net', 'b.example.net']);
  });

  it('confirms IPv6 through AAAA', async () => {
    const result = await lookupWith().lookup('2001:db8::25');
    expect(result.state).toBe('ok');
    expect(result.ptr).toBe('mx.example.com');
  });

  it('looks up an IPv4-mapped address as IPv4', async () => {
    const result = await lookupWith().lookup('::ffff:203.0.113.9');
    expect(result.state).toBe('ok');
    expect(result.ptr).toBe('mail.billing.example.com');
  });

  it('rejects an invalid address without a query', async () => {
    const before = queries.length;
    const result = await lookupWith().lookup('not-an-ip');
    expect(result.state).toBe('error');
    expect(result.error).toBe('invalid IP address "not-an-ip"');
    expect(queries.length).toBe(before);
  });

  it('answers a repeated lookup from the cache', async () => {
    const lookup = lookupWith({ cache: new MemoryReverseDnsCache() });
    const count = () =>
      queries.filter((query) => query.endsWith(':10.113.0.203.in-addr.arpa')).length;
    const before = count();
    const first = await lookup.lookup('203.0.113.10');
    const second = await lookup.lookup('203.0.113.10');
    expect(second).toEqual(first);
    expect(count() - before).toBe(1);
  });

  it('queries again without a cache', async () => {
    const lookup = lookupWith({ cache: null });
    const count = () =>
      queries.filter((query) => query.endsWith(':10.113.0.203.in-addr.arpa')).length;
    const before = count();
    await lookup.lookup('203.0.113.10');
    await lookup.lookup('203.0.113.10');
    expect(count() - before).toBe(2);
  });

  it('bounds the queries in flight', async () => {
    maxInFlight = 0;
    const ips = Array.from({ length: 12 }, (_, i) => `192.0.2.${i + 1}`);
    const results = await lookupWith({ concurrency: 3 }).lookupMany([...ips, ips[0]]);
    expect(results.size).toBe(12);
    expect(
      [...results.values()].every((result: ReverseDnsResult) => result.state === 'no-ptr'),
    ).toBe(true);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(3);
  });
});

describe('MemoryReverseDnsCache', () => {
  it('expires entries after their TTL', () => {
    let now = 1_000_000;
    const cache = new MemoryReverseDnsCache(10, () => now);
    const result: ReverseDnsResult = {
      ip: '192.0.2.1',
      state: 'no-ptr',
      ptr: null,
      names: [],
      error: null,
    };
    cache.set('192.0.2.1', result, 60);
    expect(cache.get('192.0.2.1')).toBe(result);
    now += 61_000;
    expect(cache.get('192.0.2.1')).toBeUndefined();
  });

  it('drops the oldest entry when full', () => {
    const cache = new MemoryReverseDnsCache(2);
    const result = (ip: string): ReverseDnsResult => ({
      ip,
      state: 'no-ptr',
      ptr: null,
      names: [],
      error: null,
    });
    cache.set('192.0.2.1', result('192.0.2.1'), 60);
    cache.set('192.0.2.2', result('192.0.2.2'), 60);
    cache.set('192.0.2.3', result('192.0.2.3'), 60);
    expect(cache.get('192.0.2.1')).toBeUndefined();
    expect(cache.get('192.0.2.3')?.ip).toBe('192.0.2.3');
  });
});
