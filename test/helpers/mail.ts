/** Builds a MIME message with the given parts, for tests that need report e-mails. */
export interface MimePart {
  contentType: string;
  filename?: string;
  content: Buffer | string;
  /** base64 (default for Buffers) or 7bit for text. */
  encoding?: 'base64' | '7bit';
}

export function buildMessage(
  subject: string,
  parts: MimePart[],
  boundary = 'dmarc-lens-test-boundary',
): Buffer {
  const lines = [
    'From: noreply-dmarc-support@google.com',
    'To: dmarc-reports@example.com',
    `Subject: ${subject}`,
    'Date: Fri, 05 Dec 2025 10:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@test.example>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    'This is a multi-part message in MIME format.',
  ];
  for (const part of parts) {
    const encoding = part.encoding ?? (Buffer.isBuffer(part.content) ? 'base64' : '7bit');
    lines.push(`--${boundary}`);
    const disposition = part.filename ? `attachment; filename="${part.filename}"` : 'inline';
    lines.push(
      `Content-Type: ${part.contentType}${part.filename ? `; name="${part.filename}"` : ''}`,
    );
    lines.push(`Content-Disposition: ${disposition}`);
    lines.push(`Content-Transfer-Encoding: ${encoding}`);
    lines.push('');
    const content = Buffer.isBuffer(part.content) ? part.content : Buffer.from(part.content);
    lines.push(
      encoding === 'base64'
        ? content.toString('base64').replace(/.{76}/g, '$&\r\n')
        : content.toString(),
    );
  }
  lines.push(`--${boundary}--`, '');
  return Buffer.from(lines.join('\r\n'));
}
