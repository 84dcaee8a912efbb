import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';

import { parseInput } from '../../src/parse/index.js';
import { buildMessage } from '../helpers/mail.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'reports');
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name));

async function parseOne(bytes: Buffer, name = 'input') {
  const parsed = await parseInput(bytes, name);
  expect(parsed.errors.map((error) => error.message)).toEqual([]);
  expect(parsed.reports).toHaveLength(1);
  return parsed.reports[0];
}

describe('aggregate report reader', () => {
  it('reads RFC 7489 metadata and policy', async () => {
    const report = await parseOne(fixture('rfc7489-google.xml'));

    expect(report.version).toBe('1.0');
    expect(report.metadata).toMatchObject({
      orgName: 'google.com',
      email: 'noreply-dmarc-support@google.com',
      reportId: '5717107811868587391',
    });
    expect(report.metadata.dateBegin.toISOString()).toBe('2025-12-05T00:00:00.000Z');
    expect(report.policy).toMatchObject({ domain: 'example.com', p: 'none', np: 'none', pct: 100 });
  });

  it('normalizes case, whitespace, IPv6 and trailing dots', async () => {
    const report = await parseOne(fixture('rfc7489-google.xml'));
    const [first, second, third] = report.records;

    expect(first.dkim).toHaveLength(2);
    expect(second.sourceIp).toBe('2001:db8::7');
    expect(second.headerFrom).toBe('example.com');
    expect(second.reasons).toEqual([{ type: 'local_policy', comment: 'arc=pass' }]);
    expect(third.sourceIp).toBe('203.0.113.9');
    expect(third.disposition).toBe('none');
    expect(third.evalDkim).toBe('fail');
    expect(third.evalSpf).toBe('pass');
    expect(third.dkim[0].humanResult).toBe('signature did not verify');
  });

  it('reads the draft schema with millisecond dates', async () => {
    const report = await parseOne(fixture('draft-no-version.xml'));

    expect(report.version).toBeNull();
    expect(report.metadata.dateBegin.toISOString()).toBe('2025-12-05T00:00:00.000Z');
    // The draft's <identities> element holds what RFC 7489 calls <identifiers>.
    expect(report.records[0].headerFrom).toBe('example.com');
  });

  it('reads RFC 9990 in its namespace and keeps unknown elements', async () => {
    const report = await parseOne(fixture('rfc9990-namespaced.xml'));

    expect(report.namespace).toBe('urn:ietf:params:xml:ns:dmarc-2.0');
    expect(report.metadata.generator).toBe('receiver-mta 4.2');
    expect(report.policy).toMatchObject({
      np: 'reject',
      testing: 'y',
      discoveryMethod: 'treewalk',
    });
    expect(report.extensions).toEqual({ extension: { note: 'kept as it came' } });
    expect(report.records[0].disposition).toBe('pass');
    expect(report.records[0].sourceIp).toBe('2001:db8::1:0:0:1');
    expect(report.records[0].extensions).toEqual({ 'row/future_field': 'unknown but kept' });
    expect(report.records[0].envelopeTo).toBe('receiver.example');
  });

  it('reads gzip, zip and double gzip by their bytes', async () => {
    const xml = fixture('rfc7489-google.xml');
    const zip = Buffer.from(zipSync({ 'report.xml': new Uint8Array(xml) }));

    for (const [name, bytes] of [
      ['report.zip.txt', zip],
      ['report.xml', gzipSync(xml)],
      ['report.xml.gz.gz', gzipSync(gzipSync(xml))],
    ] as const) {
      const report = await parseOne(bytes, name);
      expect(report.records, name).toHaveLength(3);
    }
  });

  it('ignores bytes after the gzip data with a warning', async () => {
    const bytes = Buffer.concat([gzipSync(fixture('rfc7489-google.xml')), Buffer.from('\r\n')]);
    const report = await parseOne(bytes, 'trailing.xml.gz');

    expect(report.warnings.join(' ')).toMatch(/Ignored 2 bytes after the gzip data/);
  });

  it('reads e-mail attachments of any MIME type', async () => {
    const gz = gzipSync(fixture('rfc7489-google.xml'));
    const message = buildMessage('Report domain: example.com', [
      { contentType: 'text/plain', content: 'This is an aggregate report.' },
      { contentType: 'application/octet-stream', filename: 'report.bin', content: gz },
    ]);

    const report = await parseOne(message, 'report.eml');
    expect(report.metadata.reportId).toBe('5717107811868587391');
  });

  it('reads a zip labelled as gzip and a nested message', async () => {
    const xml = fixture('draft-no-version.xml');
    const zip = Buffer.from(zipSync({ 'r.xml': new Uint8Array(xml) }));
    const inner = buildMessage('inner', [
      { contentType: 'application/gzip', filename: 'r.xml.gz', content: zip },
    ]);
    const outer = buildMessage(
      'Fwd: report',
      [{ contentType: 'message/rfc822', content: inner, encoding: '7bit' }],
      'outer-boundary',
    );

    const report = await parseOne(outer, 'forwarded.eml');
    expect(report.metadata.orgName).toBe('Yahoo! Inc.');
  });

  it('reads a report inline in the message body', async () => {
    const message = buildMessage('Report', [
      {
        contentType: 'text/plain',
        content: `Report follows:\n\n${fixture('draft-no-version.xml')}`,
      },
    ]);

    const report = await parseOne(message, 'inline.eml');
    expect(report.records).toHaveLength(1);
  });

  it('rejects a message without a report', async () => {
    const message = buildMessage('Hello', [
      { contentType: 'text/plain', content: 'Just saying hi.' },
    ]);
    const parsed = await parseInput(message, 'hello.eml');

    expect(parsed.reports).toEqual([]);
    expect(parsed.errors.map((error) => error.code)).toEqual(['no-report']);
    expect(parsed.errors[0].message).toContain('hello.eml');
  });

  it('names the report and the document in errors', async () => {
    const xml = fixture('rfc7489-google.xml')
      .toString()
      .replace('<source_ip>198.51.100.23</source_ip>', '<source_ip>not-an-ip</source_ip>');
    const parsed = await parseInput(Buffer.from(xml), 'bad-ip.xml');

    expect(parsed.errors).toHaveLength(1);
    expect(parsed.errors[0].code).toBe('invalid-value');
    expect(parsed.errors[0].message).toBe(
      'Invalid source_ip "not-an-ip" (report "5717107811868587391" from "google.com" in bad-ip.xml)',
    );
  });

  it('accepts an empty source_ip and an empty reason', async () => {
    const xml = fixture('draft-no-version.xml')
      .toString()
      .replace('<source_ip>192.0.2.44</source_ip>', '<source_ip/>')
      .replace('<spf>fail</spf>', '<spf>fail</spf><reason></reason>');
    const report = await parseOne(Buffer.from(xml));

    expect(report.records[0].sourceIp).toBeNull();
    expect(report.records[0].reasons).toEqual([]);
  });
});

describe('forwarded report messages', () => {
  it('reads a forwarded message without false errors', async () => {
    const gz = gzipSync(fixture('rfc7489-google.xml'));
    let message = buildMessage('Report', [
      { contentType: 'application/gzip', filename: 'report.xml.gz', content: gz },
    ]);
    // Forwarded three times as an attached message/rfc822, every level reusing one boundary as
    // some mail clients do: the parser then lifts the report out of the inner messages.
    for (let level = 0; level < 3; level++) {
      message = buildMessage(
        `Fwd ${level}`,
        [
          { contentType: 'text/plain', content: 'See the attached report.' },
          {
            contentType: 'message/rfc822',
            filename: `fwd-${level}.eml`,
            content: message,
            encoding: '7bit',
          },
        ],
        'dmarc-lens-test-boundary',
      );
    }

    const parsed = await parseInput(message, 'forwarded.eml');

    expect(parsed.errors.map((error) => error.message)).toEqual([]);
    expect(parsed.reports).toHaveLength(1);
  });
});
