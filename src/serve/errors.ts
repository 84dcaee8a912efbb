import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';

/** An error with the HTTP status and the machine-readable code the API responds with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options);
    this.name = 'HttpError';
    this.headers = options?.headers ?? {};
  }

  readonly headers: Record<string, string>;
}

export function badRequest(code: string, message: string): HttpError {
  return new HttpError(400, code, message);
}

export function notFound(message: string): HttpError {
  return new HttpError(404, 'not-found', message);
}

// Errors that body-parser (inside express.json and express.raw) raises, by their `type`.
const BODY_ERRORS: Record<string, { status: number; code: string }> = {
  'entity.too.large': { status: 413, code: 'payload-too-large' },
  'entity.parse.failed': { status: 400, code: 'invalid-json' },
  'encoding.unsupported': { status: 415, code: 'unsupported-encoding' },
  'request.aborted': { status: 400, code: 'request-aborted' },
};

function toHttpError(error: unknown): HttpError | null {
  if (error instanceof HttpError) return error;
  const type = (error as { type?: unknown })?.type;
  if (typeof type === 'string' && BODY_ERRORS[type]) {
    const { status, code } = BODY_ERRORS[type];
    return new HttpError(status, code, (error as Error).message, { cause: error });
  }
  return null;
}

/** Responds to unknown paths under /api with a JSON 404. */
export const apiNotFound: RequestHandler = (req) => {
  throw notFound(`No API endpoint ${req.method} ${req.baseUrl}${req.path}`);
};

/**
 * Turns errors into `{ error: { code, message } }` with their status. Unexpected errors are
 * logged and get a generic 500, so that no internal detail reaches the client.
 */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    let httpError = toHttpError(error);
    if (!httpError) {
      log.error({ err: error, method: req.method, path: req.path }, 'Request failed');
      httpError = new HttpError(500, 'internal-error', 'Internal server error; see the server log');
    } else if (httpError.status >= 500 && httpError.status !== 501) {
      log.warn({ err: error, method: req.method, path: req.path }, httpError.message);
    }

    // A streamed response (CSV) that fails halfway cannot change its status any more: cut it
    // off so that the client sees an incomplete download instead of a silently short file.
    if (res.headersSent) {
      res.destroy(error instanceof Error ? error : undefined);
      return;
    }
    res.set(httpError.headers);
    res
      .status(httpError.status)
      .json({ error: { code: httpError.code, message: httpError.message } });
  };
}
