// Formatting of numbers and times. Times are UTC unless the user picked their own zone
// (tz=local in the URL).

const numberFormat = new Intl.NumberFormat('en');

export function formatNumber(value) {
  return value === null || value === undefined ? '' : numberFormat.format(value);
}

export function formatRate(rate) {
  if (rate === null || rate === undefined) return '–';
  return `${(rate * 100).toFixed(1)}%`;
}

export function localTimeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Formats an ISO time as `YYYY-MM-DD HH:MM` in UTC, or in the browser's zone when `local`. */
export function formatTime(iso, local) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const timeZone = local ? localTimeZone() : 'UTC';
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date);
  const part = (type) => parts.find((entry) => entry.type === type)?.value ?? '';
  const zone = local ? '' : ' UTC';
  return `${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}${zone}`;
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
