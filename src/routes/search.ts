import { SIGNED_IN } from '../schemas/common.ts'
import { errors } from '../schemas/error-responses.ts'
import { SearchQuery, SearchResults } from '../schemas/search.ts'
import { type App, secured } from './types.ts'

export default async function searchRoutes(app: App) {
  const { search } = app.services
  app.addHook('onRequest', app.authenticate)

  app.get('/search/messages', {
    schema: {
      tags: ['messages'],
      summary: 'Search the messages you can see, newest first',
      description:
        'Full-text search over every conversation you are in, or one (`conversation_id`): only messages after your cleared point, not deleted, not system notices. ' +
        'Page with `before` = the previous answer\'s `next_before` (null on the last page).',
      operationId: 'searchMessages',
      security: secured,
      querystring: SearchQuery,
      response: { 200: SearchResults, ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'CONVERSATION_NOT_FOUND', 'MESSAGE_NOT_FOUND') },
    },
  }, async (request) => search.messages(request.userId, request.query))
}
