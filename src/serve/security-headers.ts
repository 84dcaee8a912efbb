import type { RequestHandler } from 'express';

// No inline scripts or styles anywhere: the dashboard loads its code and CSS from files, and
// report fields are only ever set as text. chart.js styles its canvas through the CSSOM
// (element.style), which style-src does not restrict.
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Sets the security headers of every response; HSTS only when PUBLIC_URL is https. */
export function securityHeaders(https: boolean): RequestHandler {
  const headers: Record<string, string> = {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
  };
  if (https) headers['Strict-Transport-Security'] = 'max-age=31536000';
  return (_req, res, next) => {
    res.set(headers);
    next();
  };
}
