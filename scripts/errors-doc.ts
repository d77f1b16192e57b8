import { ERROR_CODES } from '../src/error-codes.ts'

/** docs/ERRORS.md, from src/error-codes.ts. */
export function errorsMarkdown(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|')
  const rows = Object.entries(ERROR_CODES).map(([code, info]) =>
    `| \`${code}\` | ${info.status} | ${cell(info.when)}${'ws' in info ? ' (WebSocket only)' : ''} | ${cell(info.error)} |`)
  return [
    '# Error codes',
    '',
    'Every error, REST or WebSocket, is `{"error": "<a sentence for people>", "code": "<CODE>"}` (with `details`, a list of',
    'strings, for VALIDATION_ERROR and USER_NOT_FOUND). Act on `code`; show `error`. A stranger gets the same 404 for a',
    'conversation, message or file that exists as for one that does not. WebSocket errors come as',
    '`{"type": "error", "ref", "error", "code"}` answering the frame with that `ref`.',
    '',
    'Generated from `src/error-codes.ts` by `npm run openapi` (a test fails when it is stale); the same list is the',
    "OpenAPI Error schema's `x-error-codes`, and each operation shows its own codes as examples.",
    '',
    '| code | status | when | e.g. `error` |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n')
}
