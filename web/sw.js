// The service worker: it shows the Web Push notifications the server sends while you have no socket open
// (their payload: src/outgoing/web-push.ts), one per conversation (a newer one replaces it), and a click opens
// the conversation in a page of this client.
self.addEventListener('push', (event) => {
  const notice = event.data?.json() ?? {}
  event.waitUntil(self.registration.showNotification(notice.title || 'Parley', {
    body: notice.body,
    tag: notice.conversation_id,
    data: notice,
  }))
})

self.addEventListener('notificationclick', (event) => {
  event.notification.close()
  const id = event.notification.data?.conversation_id
  const url = id ? `/#conversation=${id}` : '/'
  event.waitUntil(self.clients.matchAll({ type: 'window' }).then((pages) => {
    const page = pages[0]
    if (!page) return self.clients.openWindow(url)
    page.postMessage({ type: 'open', conversation_id: id })
    return page.focus()
  }))
})
