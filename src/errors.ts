import type { FastifyError, FastifyInstance } from 'fastify'
import type { ErrorCode, NotFoundWhat } from './error-codes.ts'

/** An error a client can act on: it becomes `{ error, code, details? }` with its status. Its code is one of error-codes.ts. */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: string[],
  ) {
    super(message)
  }
}

export const notFound = (what: NotFoundWhat) =>
  new AppError(404, `${what.toUpperCase()}_NOT_FOUND` as ErrorCode, `${what[0].toUpperCase()}${what.slice(1)} not found`)
export const forbidden = (message: string, code: ErrorCode) => new AppError(403, code, message)
export const badRequest = (message: string, code: ErrorCode, details?: string[]) => new AppError(400, code, message, details)
export const conflict = (message: string, code: ErrorCode) => new AppError(409, code, message)
export const unauthorized = (message: string, code: ErrorCode = 'UNAUTHORIZED') => new AppError(401, code, message)

// Connection exceptions (class 08) and the server going away or not yet accepting (57P01–57P03), as SQLSTATEs;
// and what pg and the socket say when there is no server to send them.
const UNREACHABLE_STATES = /^(08...|57P0[123])$/
const UNREACHABLE_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'])

/**
 * A database that is away (stopped, restarting, unreachable) answers 503 with Retry-After rather than 500: the
 * request may be retried as it is, and with a client_id a send is retried without fear of doubling it.
 */
export function unavailable(err: unknown): AppError | undefined {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown }
  const away = (typeof code === 'string' && (UNREACHABLE_STATES.test(code) || UNREACHABLE_CODES.has(code))) ||
    (typeof message === 'string' && UNREACHABLE_MESSAGES.test(message))
  return away ? new AppError(503, 'SERVICE_UNAVAILABLE', 'The database is unavailable; retry in a moment') : undefined
}

/** Seconds a client should wait before retrying a 503. */
export const RETRY_UNAVAILABLE_S = 1

// Fastify's own errors, mapped to the contract's codes. Anything else unexpected is a 500 with no detail.
const FRAMEWORK_CODES: Record<string, [number, ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE', 'Request body is too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported Content-Type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'BAD_REQUEST', 'Content-Length does not match the body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON', 'Body must not be empty when Content-Type is application/json'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'INVALID_JSON', 'Body is not valid JSON'],
  FST_ERR_CTP_EMPTY_TYPE: [400, 'BAD_REQUEST', 'Content-Type must not be empty'],
  FST_ERR_CTP_INVALID_TYPE: [400, 'BAD_REQUEST', 'Content-Type is not valid'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'BAD_REQUEST', 'Malformed request'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the file as multipart/form-data'],
  FST_PARTS_LIMIT: [413, 'PAYLOAD_TOO_LARGE', 'Send one part only: the file'],
  FST_FILES_LIMIT: [413, 'PAYLOAD_TOO_LARGE', 'Send one file only'],
  FST_FIELDS_LIMIT: [413, 'PAYLOAD_TOO_LARGE', 'Send the file only, no other fields'],
  FST_PROTO_VIOLATION: [400, 'BAD_REQUEST', 'Malformed multipart field name'],
  FST_MP_PREMATURE_CLOSE: [400, 'BAD_REQUEST', 'The upload ended before it was complete'],
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof AppError) {
      return reply.code(err.statusCode).send({ error: err.message, code: err.code, ...(err.details && { details: err.details }) })
    }
    if (err.validation) {
      const details = err.validation.map((v) => `${v.instancePath || err.validationContext || 'request'} ${v.message}`.trim())
      return reply.code(400).send({ error: `Invalid ${err.validationContext ?? 'request'}: ${details[0]}`, code: 'VALIDATION_ERROR', details })
    }
    const known = err.code && FRAMEWORK_CODES[err.code]
    if (known) return reply.code(known[0]).send({ error: known[2], code: known[1] })
    if (err.statusCode === 429) {
      return reply.code(429).send({ error: 'Too many requests, slow down', code: 'RATE_LIMITED' })
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: err.message, code: err.code ?? 'BAD_REQUEST' })
    }
    // PostgreSQL text cannot hold a NUL character (22021 as text, 22P05 inside jsonb, as batched messages
    // travel): that is bad input from the client, not a 500.
    if (err.code === '22021' || err.code === '22P05') {
      return reply.code(400).send({ error: 'Text must not contain NUL (\\u0000) characters', code: 'VALIDATION_ERROR' })
    }
    const away = unavailable(err)
    if (away) {
      request.log.warn({ err }, 'database unavailable')
      return reply.code(503).header('retry-after', RETRY_UNAVAILABLE_S).send({ error: away.message, code: away.code })
    }
    request.log.error({ err }, 'unhandled error')
    return reply.code(500).send({ error: 'Internal server error', code: 'INTERNAL_ERROR' })
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `Route ${request.method} ${request.url.split('?')[0].slice(0, 200)} not found`, code: 'ROUTE_NOT_FOUND' })
  })
}
