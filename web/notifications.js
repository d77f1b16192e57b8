// Web Push for this browser. The service worker (sw.js) is registered when someone signs in: it only shows
// what arrives. Permission is asked only when they press "Turn on notifications" (a prompt nobody asked for
// is what browsers block), then the browser subscribes with the server's VAPID key and the subscription is
// given to the server (POST /push/subscriptions). Turning it off unsubscribes both.
import { ApiError } from './api.js'
import { $ } from './dom.js'
import { api } from './state.js'

const KEY = 'parley.push'
const supported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window
let registration = null

/** On sign-in: the worker, and the button's state. */
export async function setUpNotifications(openConversation) {
  if (!supported()) return render('Notifications are not available in this browser.')
  await navigator.serviceWorker.register('/sw.js')
  // A push subscription needs an active worker: `ready` waits until this one is.
  registration = await navigator.serviceWorker.ready
  navigator.serviceWorker.onmessage = (e) => { if (e.data?.type === 'open' && e.data.conversation_id) openConversation(e.data.conversation_id) }
  await render()
}

async function render(status) {
  const button = $('#notifications-toggle')
  if (status) {
    $('#notifications-status').textContent = status
    button.hidden = true
    return
  }
  const subscribed = await registration?.pushManager.getSubscription()
  button.hidden = false
  button.textContent = subscribed ? 'Turn off notifications' : 'Turn on notifications'
  if (Notification.permission === 'denied') $('#notifications-status').textContent = 'Notifications are blocked for this site in the browser’s settings.'
}

$('#notifications-toggle').addEventListener('click', async () => {
  const error = $('#notifications-error')
  error.textContent = ''
  try {
    const current = await registration.pushManager.getSubscription()
    if (current) await turnOff(current)
    else await turnOn()
  } catch (err) {
    error.textContent = err instanceof ApiError && err.code === 'PUSH_NOT_CONFIGURED' ? 'This server does not send notifications.' : `Could not change notifications: ${err.message}`
  }
  await render()
})

async function turnOn() {
  if ((await Notification.requestPermission()) !== 'granted') throw new Error('permission was not given')
  const { public_key } = await api.get('/push/vapid-public-key')
  const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: public_key })
  const saved = await api.post('/push/subscriptions', subscription.toJSON())
  localStorage.setItem(KEY, JSON.stringify({ endpoint: subscription.endpoint, id: saved.id }))
}

async function turnOff(subscription) {
  const kept = JSON.parse(localStorage.getItem(KEY) ?? 'null')
  if (kept?.endpoint === subscription.endpoint) await api.del(`/push/subscriptions/${kept.id}`).catch(() => {})
  localStorage.removeItem(KEY)
  await subscription.unsubscribe()
}

/** Signing out: this browser stops receiving the account's notifications (the next person here is someone else). */
export async function dropNotifications() {
  const current = await registration?.pushManager.getSubscription().catch(() => null)
  if (current) await turnOff(current).catch(() => {})
}
