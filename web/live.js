// The WebSocket: connects with the bearer subprotocol, resumes from the last seq seen per conversation
// on every (re)connect, drops frames already seen, and asks for a resume when it sees a gap.

export class Live {
  socket = null
  attempt = 0
  stopped = true
  /** conversation id → the last seq handled */
  seqs = new Map()
  /** "conversation:seq" of every log event handled: nothing is applied twice. */
  seen = new Set()
  queue = Promise.resolve()

  constructor(api, { onEvent, onStatus }) {
    this.api = api
    this.onEvent = onEvent
    this.onStatus = onStatus
  }

  /** What a conversation's REST state already includes: events up to `seq` are not applied again. */
  known(conversationId, seq) {
    if ((this.seqs.get(conversationId) ?? -1) < seq) this.seqs.set(conversationId, seq)
    this.advance(conversationId)
  }

  /** seqs holds the last seq with nothing missing before it; events seen past a gap are in `seen`. */
  advance(conversationId) {
    let s = this.seqs.get(conversationId)
    while (this.seen.has(`${conversationId}:${s + 1}`)) this.seen.delete(`${conversationId}:${++s}`)
    this.seqs.set(conversationId, s)
  }

  start() {
    this.stopped = false
    this.connect()
  }

  stop() {
    this.stopped = true
    clearTimeout(this.retry)
    this.socket?.close(1000)
    this.socket = null
  }

  connect() {
    if (this.stopped || !this.api.access) return
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`
    const socket = new WebSocket(url, [`bearer.${this.api.access}`])
    this.socket = socket
    socket.onopen = () => {
      this.attempt = 0
      this.onStatus('open')
      this.resuming = false
      this.resume()
    }
    socket.onmessage = (e) => {
      let frame
      try { frame = JSON.parse(e.data) } catch { return }
      // One frame at a time, in order, even when handling one needs a request.
      this.queue = this.queue.then(() => this.handle(frame)).catch((err) => console.error(err))
    }
    socket.onclose = (e) => {
      if (this.socket !== socket) return
      this.socket = null
      if (this.stopped) return
      this.onStatus('closed')
      const delay = Math.min(10_000, 300 * 2 ** this.attempt++) * (0.75 + Math.random() / 2)
      this.retry = setTimeout(async () => {
        // 4401: the access token expired; refresh it first.
        if (e.code === 4401) await this.api.refresh().catch(() => {})
        this.connect()
      }, e.code === 4401 ? 0 : delay)
    }
  }

  send(frame) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame))
  }

  resume() {
    if (this.resuming) return
    this.resuming = true
    this.send({ type: 'resume', conversations: Object.fromEntries(this.seqs) })
  }

  async handle(frame) {
    const { conversation_id: conv, seq } = frame
    if (conv && typeof seq === 'number') {
      const key = `${conv}:${seq}`
      if (seq <= (this.seqs.get(conv) ?? -1) || this.seen.has(key)) return
      const wasKnown = this.seqs.has(conv)
      await this.onEvent(frame)
      if (seq <= (this.seqs.get(conv) ?? -1)) return
      this.seen.add(key)
      if (!this.seqs.has(conv)) this.seqs.set(conv, seq - 1)
      this.advance(conv)
      // A gap (say, after being closed as too slow): ask for what is missing; what was seen is skipped.
      if (wasKnown && this.seqs.get(conv) < seq) this.resume()
      return
    }
    if (frame.type === 'resumed') this.resuming = false
    await this.onEvent(frame)
  }
}
