import WebSocket from 'ws'

export interface Frame {
  type: string
  conversation_id?: string
  seq?: number
  data?: any
  ref?: string
  error?: string
  code?: string
}

/** A real WebSocket client that records every frame, with waits for what a test expects next. */
export class WsClient {
  readonly frames: Frame[] = []
  closed: { code: number; reason: string } | undefined
  private waiters: Array<() => void> = []

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()))
      this.wake()
    })
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      this.wake()
    })
    socket.on('error', () => {})
  }

  static open(base: string, token?: string, opts: { protocol?: boolean } = {}): Promise<WsClient> {
    const url = `${base.replace(/^http/, 'ws')}/ws${token && !opts.protocol ? `?token=${token}` : ''}`
    const socket = new WebSocket(url, token && opts.protocol ? [`bearer.${token}`] : undefined)
    const client = new WsClient(socket)
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client))
      socket.once('error', reject)
    })
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w()
  }

  send(frame: unknown) {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** Resolves when `test` holds of the frames seen so far (fails after `ms`). */
  async until<T>(test: (frames: Frame[]) => T | undefined | false, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms
    for (;;) {
      const found = test(this.frames)
      if (found) return found
      if (Date.now() > deadline) throw new Error(`timed out; frames so far: ${JSON.stringify(this.frames.map((f) => [f.type, f.seq]))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(10, deadline - Date.now()))
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** The first frame (after `from`) that matches. */
  next(match: (f: Frame) => boolean, ms?: number): Promise<Frame> {
    return this.until((fs) => fs.find(match), ms)
  }

  count(match: (f: Frame) => boolean): number {
    return this.frames.filter(match).length
  }

  async closedWith(ms = 10_000): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed, ms)
  }

  close() {
    this.socket.close()
  }

  /** Round trip: every frame the server sent before our ping has arrived once the pong is here. */
  async sync() {
    const pongs = this.count((f) => f.type === 'pong')
    this.send({ type: 'ping' })
    await this.until((fs) => fs.filter((f) => f.type === 'pong').length > pongs)
  }
}
