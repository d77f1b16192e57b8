import { Type, type Static } from 'typebox'
import { Nullable, Uuid } from './common.ts'
import { Message } from './messages.ts'
import { named } from './named.ts'

export const SEARCH_MAX_LIMIT = 50

export const SearchQuery = Type.Object({
  q: Type.String({
    minLength: 1,
    maxLength: 200,
    description: 'Words (all must match), "a quoted phrase", -excluded, `or` between alternatives; the last word also matches as a prefix while it is being typed. Accents and case are ignored.',
  }),
  conversation_id: Type.Optional(Type.String({ format: 'uuid', description: 'Only this conversation (yours: else 404)' })),
  sender_id: Type.Optional(Type.String({ format: 'uuid', description: 'Only messages this user sent' })),
  before: Type.Optional(Type.String({ format: 'uuid', description: "The previous page's next_before: only older results" })),
  limit: Type.Integer({ minimum: 1, maximum: SEARCH_MAX_LIMIT, default: 20 }),
})

export const SearchHit = named('SearchHit', Type.Object({
  message: Message,
  highlight: Type.String({ description: 'The matching passage as HTML: matches in <mark>…</mark>, everything else escaped' }),
}, { description: 'A message that matches, with its matching passage' }))
export type SearchHit = Static<typeof SearchHit>

export const SearchResults = named('SearchResults', Type.Object({
  results: Type.Array(SearchHit, { description: 'Newest first' }),
  next_before: Nullable(Uuid, { description: "The next page's `before`; null on the last page" }),
}, { description: 'A page of search results, newest first' }))
