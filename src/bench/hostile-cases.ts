import { deflateRawSync, gzipSync } from 'node:zlib';

import type { ParseLimits } from '../parse/limits.js';

/** One hostile or odd input and what reading it must give. */
export interface HostileCase {
  name: string;
  /** Builds the input; large ones are generated rather than stored. */
  build(): Buffer;
  /** The error code expected, or `parse` when the input must read as a report. */
  expected: string;
  /** Limits to apply instead of the defaults, to keep a generated input small. */
  limits?: Partial<ParseLimits>;
  /** For `parse` cases: what the first record's header_from or the org name must be. */
  check?: { orgName?: string; records?: number; warning?: RegExp };
}

const HEAD = (orgName = 'Hostile Reporter', extra = '') => `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>${orgName}</org_name>
    <email>dmarc@hostile.example</email>
    <report_id>hostile-1</report_id>
    <date_range><begin>1764892800</begin><end>1764979199</end></date_range>
  </report_metadata>
  <policy_published><domain>example.com</domain><p>none</p></policy_published>${extra}
`;

const RECORD = (count = '1', ip = '192.0.2.1') => `  <record>
    <row><source_ip>${ip}</source_ip><count>${count}</count>
      <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>example.com</domain><result>fail</result></spf></auth_results>
  </record>
`;

const TAIL = '</feedback>\n';

const report = (head = HEAD(), records = RECORD()) => Buffer.from(head + records + TAIL);

/**
 * A minimal zip with one deflated entry, written by hand so that counts can be doctored.
 * The CRC fields stay 0: yauzl checks sizes, not CRCs, so the archive still opens.
 */
function zipOf(name: string, content: Buffer): Buffer {
  const compressed = deflateRawSync(content, { level: 9 });
  const nameBytes = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(0, 14);
  local.writeUInt32LE(compressed.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(0, 16);
  central.writeUInt32LE(compressed.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  central.writeUInt32LE(0, 42);
  const centralOffset = local.length + nameBytes.length + compressed.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + nameBytes.length, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([local, nameBytes, compressed, central, nameBytes, end]);
}

function utf16(text: string, bigEndian: boolean): Buffer {
  const le = Buffer.from(`\ufeff${text}`, 'utf16le');
  if (!bigEndian) return le;
  const be = Buffer.alloc(le.length);
  for (let i = 0; i < le.length; i += 2) {
    be[i] = le[i + 1];
    be[i + 1] = le[i];
  }
  return be;
}

function message(parts: string[]): Buffer {
  const body = parts
    .map(
      (part, index) =>
        `--b\r\nContent-Type: application/octet-stream; name="part${index}.bin"\r\n` +
        `Content-Disposition: attachment; filename="part${index}.bin"\r\n` +
        `Content-Transfer-Encoding: base64\r\n\r\n${part}\r\n`,
    )
    .join('');
  return Buffer.from(
    'From: a@hostile.example\r\nTo: b@example.com\r\nSubject: many\r\nMIME-Version: 1.0\r\n' +
      `Content-Type: multipart/mixed; boundary="b"\r\n\r\n${body}--b--\r\n`,
  );
}

export const HOSTILE_CASES: HostileCase[] = [
  {
    name: 'gzip bomb',
    build: () => {
      // Whitespace after the header is valid XML, so only the ratio cap can stop it.
      const body = Buffer.alloc(200 * 1024 * 1024, ' ');
      return gzipSync(Buffer.concat([Buffer.from(HEAD()), body]), { level: 9 });
    },
    expected: 'compression-ratio',
  },
  {
    name: 'gzip bomb of markup',
    build: () => gzipSync(Buffer.alloc(200 * 1024 * 1024, '<'), { level: 9 }),
    expected: 'xml-malformed',
  },
  {
    name: 'zip bomb',
    build: () => {
      return zipOf('report.xml', Buffer.alloc(200 * 1024 * 1024, ' '));
    },
    expected: 'compression-ratio',
  },
  {
    name: 'gzip above the decompressed size cap',
    build: () =>
      gzipSync(Buffer.concat([Buffer.from(HEAD()), Buffer.from(RECORD().repeat(20_000))])),
    expected: 'decompressed-too-large',
    limits: { maxDecompressedBytes: 1024 * 1024, maxCompressionRatio: 100_000 },
  },
  {
    name: 'billion laughs',
    build: () =>
      Buffer.from(
        '<?xml version="1.0"?>\n<!DOCTYPE feedback [\n <!ENTITY lol "lol">\n' +
          ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n' +
          ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n]>\n' +
          '<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>',
      ),
    expected: 'xml-doctype',
  },
  {
    name: 'external entity (XXE)',
    build: () =>
      Buffer.from(
        '<?xml version="1.0"?>\n<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' +
          '<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>',
      ),
    expected: 'xml-doctype',
  },
  {
    name: 'undeclared entity',
    build: () => report(HEAD('&custom;')),
    expected: 'xml-malformed',
  },
  {
    name: 'deep nesting',
    build: () => Buffer.from(`${HEAD()}${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}${TAIL}`),
    expected: 'xml-too-deep',
  },
  {
    name: 'breadth bomb of unknown elements',
    build: () => Buffer.from(`${HEAD()}${'<x/>'.repeat(150_000)}${RECORD()}${TAIL}`),
    expected: 'too-many-elements',
  },
  {
    name: 'record with endless unknown children',
    build: () => report(HEAD(), RECORD().replace('<row>', `<row>${'<y/>'.repeat(150_000)}`)),
    expected: 'too-many-elements',
  },
  {
    name: 'records before the header',
    build: () => {
      const head = HEAD();
      const header = head.slice(head.indexOf('<report_metadata>'));
      const records = RECORD().repeat(30);
      return Buffer.from(`<?xml version="1.0"?>\n<feedback>\n${records}${header}${TAIL}`);
    },
    expected: 'header-after-records',
    limits: { maxRecordsBeforeHeader: 20 },
  },
  {
    name: 'a few records before the header',
    build: () => {
      const head = HEAD();
      const header = head.slice(head.indexOf('<report_metadata>'));
      return Buffer.from(
        `<?xml version="1.0"?>\n<feedback>\n${RECORD().repeat(3)}${header}${TAIL}`,
      );
    },
    expected: 'parse',
    check: { records: 3 },
  },
  {
    name: 'truncated gzip header',
    build: () => Buffer.from([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0x03, 0x05]),
    expected: 'bad-gzip',
  },
  {
    name: 'date far in the past',
    build: () => report(HEAD().replace('<begin>1764892800</begin>', '<begin>-99999999999</begin>')),
    expected: 'invalid-value',
  },
  {
    name: 'date far in the future',
    build: () => report(HEAD().replace('<end>1764979199</end>', '<end>8000000000000000</end>')),
    expected: 'invalid-value',
  },
  {
    name: 'UTF-16LE without a byte order mark',
    build: () =>
      Buffer.from(report(HEAD('No Mark')).toString().replace('UTF-8', 'UTF-16'), 'utf16le'),
    expected: 'parse',
    check: { orgName: 'No Mark' },
  },
  {
    name: 'too many records',
    build: () => report(HEAD(), RECORD().repeat(11)),
    expected: 'too-many-records',
    limits: { maxRecordsPerReport: 10 },
  },
  {
    name: 'huge value',
    build: () => report(HEAD('x'.repeat(100_000))),
    expected: 'value-too-long',
  },
  {
    name: 'huge attribute',
    build: () => report(HEAD().replace('<org_name>', `<org_name note="${'y'.repeat(100_000)}">`)),
    expected: 'value-too-long',
  },
  {
    name: 'too many zip entries',
    build: () => {
      // Only the count in the end-of-central-directory record matters here.
      const zip = zipOf('r.xml', report());
      zip.writeUInt16LE(120, zip.length - 14);
      zip.writeUInt16LE(120, zip.length - 12);
      return zip;
    },
    expected: 'too-many-attachments',
  },
  {
    name: 'too many attachments',
    build: () => message(Array.from({ length: 60 }, () => gzipSync(report()).toString('base64'))),
    expected: 'too-many-attachments',
  },
  {
    name: 'input above the size cap',
    build: () => report(HEAD(), RECORD().repeat(100)),
    expected: 'input-too-large',
    limits: { maxInputBytes: 4096 },
  },
  {
    name: 'containers nested too deep',
    build: () => {
      let bytes = report();
      for (let i = 0; i < 8; i++) bytes = gzipSync(bytes);
      return bytes;
    },
    expected: 'nesting-too-deep',
  },
  {
    name: 'truncated gzip',
    build: () => {
      const gz = gzipSync(report(HEAD(), RECORD().repeat(50)));
      return gz.subarray(0, gz.length - 40);
    },
    expected: 'bad-gzip',
  },
  {
    name: 'gzip with a wrong checksum',
    build: () => {
      const gz = gzipSync(report());
      gz.writeUInt32LE((gz.readUInt32LE(gz.length - 8) + 1) >>> 0, gz.length - 8);
      return gz;
    },
    expected: 'bad-gzip',
  },
  {
    name: 'corrupt zip',
    build: () => {
      const zip = zipOf('report.xml', report());
      return Buffer.concat([zip.subarray(0, 40), Buffer.alloc(20, 0xff), zip.subarray(60)]);
    },
    expected: 'bad-zip',
  },
  { name: 'empty input', build: () => Buffer.alloc(0), expected: 'empty-input' },
  {
    name: 'random binary',
    build: () => Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919 + 13) % 256)),
    expected: 'unknown-format',
  },
  {
    name: 'unclosed document',
    build: () => Buffer.from(HEAD() + RECORD()),
    expected: 'xml-malformed',
  },
  {
    name: 'not a feedback document',
    build: () => Buffer.from('<?xml version="1.0"?><html><body>hello</body></html>'),
    expected: 'not-aggregate-report',
  },
  { name: 'negative count', build: () => report(HEAD(), RECORD('-5')), expected: 'invalid-value' },
  {
    name: 'count overflow',
    build: () => report(HEAD(), RECORD('99999999999')),
    expected: 'invalid-value',
  },
  {
    name: 'nonsense date',
    build: () => report(HEAD().replace('<begin>1764892800</begin>', '<begin>yesterday</begin>')),
    expected: 'invalid-value',
  },
  {
    name: 'unsupported encoding',
    build: () => report(HEAD().replace('encoding="UTF-8"', 'encoding="x-klingon"')),
    expected: 'unsupported-encoding',
  },
  {
    name: 'invalid UTF-8 byte',
    build: () =>
      Buffer.concat([Buffer.from(HEAD('Bad ')), Buffer.from([0x91]), Buffer.from(RECORD() + TAIL)]),
    expected: 'parse',
    check: { warning: /Invalid UTF-8 byte 0x91/ },
  },
  {
    name: 'ISO-8859-1 declared',
    build: () =>
      Buffer.from(report(HEAD('Müller GmbH')).toString().replace('UTF-8', 'ISO-8859-1'), 'latin1'),
    expected: 'parse',
    check: { orgName: 'Müller GmbH' },
  },
  {
    name: 'windows-1252 declared',
    build: () => {
      const text = report(HEAD('Euro € Mail')).toString().replace('UTF-8', 'windows-1252');
      const bytes = Buffer.from(text, 'latin1');
      bytes[bytes.indexOf(Buffer.from('Euro ')) + 5] = 0x80;
      return bytes;
    },
    expected: 'parse',
    check: { orgName: 'Euro € Mail' },
  },
  {
    name: 'UTF-16LE with BOM',
    build: () =>
      utf16(report(HEAD('Ünïcode Reporter')).toString().replace('UTF-8', 'UTF-16'), false),
    expected: 'parse',
    check: { orgName: 'Ünïcode Reporter' },
  },
  {
    name: 'UTF-16BE with BOM',
    build: () => utf16(report(HEAD('Big End')).toString().replace('UTF-8', 'UTF-16'), true),
    expected: 'parse',
    check: { orgName: 'Big End' },
  },
  {
    name: 'markup in values',
    build: () =>
      report(HEAD('&lt;script&gt;alert(1)&lt;/script&gt;<![CDATA[<img src=x onerror=alert(2)>]]>')),
    expected: 'parse',
    check: { orgName: '<script>alert(1)</script><img src=x onerror=alert(2)>' },
  },
  {
    name: 'formula in a value',
    build: () => report(HEAD('=HYPERLINK("http://evil.example","click")')),
    expected: 'parse',
    check: { orgName: '=HYPERLINK("http://evil.example","click")' },
  },
];
