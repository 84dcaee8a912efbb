// Copy buttons for DNS records. The Clipboard API exists only in secure contexts (https, or
// http on localhost), so a dashboard reached over plain http on another address falls back to
// selecting the text in a hidden field and the older copy command.

import { h, toast } from './dom.js';

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Denied by the browser: try the fallback below.
    }
  }
  const field = h('textarea', {
    className: 'visually-hidden',
    readonly: true,
    'aria-hidden': 'true',
  });
  field.value = text;
  document.body.append(field);
  field.select();
  let copied = false;
  try {
    copied = document.execCommand('copy');
  } catch {
    copied = false;
  }
  field.remove();
  return copied;
}

/** Creates a button that copies `text`. `what` names the text for screen readers and the toast. */
export function copyButton(text, what, label = 'Copy') {
  const button = h('button', {
    type: 'button',
    className: 'copy',
    text: label,
    'aria-label': `${label} ${what}`,
    on: {
      click: async () => {
        if (await copyText(text)) {
          toast(`Copied ${what}`);
          button.textContent = 'Copied';
          setTimeout(() => {
            button.textContent = label;
          }, 2000);
        } else {
          toast(`Copying failed: select the ${what} and copy it by hand`);
        }
      },
    },
  });
  return button;
}

/** Splits `_dmarc.example.com. TXT "v=DMARC1; …"` into the record name and the TXT value. */
export function splitDnsRecord(record) {
  const match = /^(\S+)\s+TXT\s+"(.*)"$/.exec(record ?? '');
  return match ? { name: match[1], value: match[2] } : null;
}

/**
 * Shows a DNS TXT record as code, with buttons that copy the whole zone-file line and the
 * value alone, which is what most DNS consoles ask for.
 */
export function dnsRecordBlock(record) {
  const parts = splitDnsRecord(record);
  return h(
    'div',
    { className: 'dns-record' },
    h('code', { className: 'wrap-anywhere', text: record }),
    h(
      'span',
      { className: 'toolbar' },
      copyButton(record, `DNS record ${parts?.name ?? ''}`.trim(), 'Copy record'),
      parts ? copyButton(parts.value, `TXT value of ${parts.name}`, 'Copy value') : null,
    ),
  );
}
