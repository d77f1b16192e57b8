import { errors } from '../schemas/common.ts'
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
      security: secured,
      querystring: SearchQuery,
      response: { 200: SearchResults, ...errors(400, 401, 404) },
    },
  }, async (request) => search.messages(request.userId, request.query))
}
