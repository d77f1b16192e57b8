// REST calls with the access token kept in memory only; the refresh token lives in sessionStorage
// (per tab, gone with the tab, not sent with every request as a cookie would be).

const REFRESH_KEY = 'parley.refresh'

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`)
    this.status = status
    this.code = body?.code
    this.details = body?.details || []
  }
}

/** The parsed body of a 2xx answer; anything else is thrown as an ApiError. */
function answer(status, text) {
  const data = text ? JSON.parse(text) : undefined
  if (status < 200 || status >= 300) throw new ApiError(status, data)
  return data
}

export class Api {
  access = null
  refreshing = null
  timer = null
  /** Called with the user on every sign-in, and with null when the session ends. */
  onSession = () => {}

  get hasStoredSession() {
    return !!sessionStorage.getItem(REFRESH_KEY)
  }

  async request(method, url, body, { auth = true, retry = true } = {}) {
    const headers = {}
    const form = body instanceof FormData
    if (body !== undefined && !form) headers['content-type'] = 'application/json'
    if (auth && this.access) headers.authorization = `Bearer ${this.access}`
    const res = await fetch(url, { method, headers, body: body === undefined || form ? body : JSON.stringify(body) })
    if (res.status === 401 && auth && retry && sessionStorage.getItem(REFRESH_KEY)) {
      await this.refresh()
      return this.request(method, url, body, { auth, retry: false })
    }
    return answer(res.status, await res.text())
  }

  get = (url) => this.request('GET', url)
  post = (url, body) => this.request('POST', url, body)
  patch = (url, body) => this.request('PATCH', url, body)
  del = (url) => this.request('DELETE', url)
  /**
   * A multipart upload of one file, in the field `file`. By XMLHttpRequest, as fetch() reports no upload
   * progress: `onProgress` gets the fraction sent, from 0 to 1.
   */
  async upload(url, file, onProgress, retry = true) {
    const form = new FormData()
    form.append('file', file)
    const { status, text } = await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest()
      xhr.open('POST', url)
      if (this.access) xhr.setRequestHeader('authorization', `Bearer ${this.access}`)
      if (onProgress) xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total) }
      xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText })
      xhr.onerror = () => reject(new TypeError('Network error'))
      xhr.send(form)
    })
    if (status === 401 && retry && sessionStorage.getItem(REFRESH_KEY)) {
      await this.refresh()
      return this.upload(url, file, onProgress, false)
    }
    return answer(status, text)
  }

  async login(username, password) {
    this.accept(await this.request('POST', '/auth/login', { username, password }, { auth: false }))
  }

  async register(fields) {
    this.accept(await this.request('POST', '/auth/register', fields, { auth: false }))
  }

  /** One refresh at a time: a refresh token works once, and reusing it would end the session. */
  refresh() {
    this.refreshing ??= (async () => {
      const token = sessionStorage.getItem(REFRESH_KEY)
      try {
        if (!token) throw new ApiError(401, { error: 'Not signed in' })
        this.accept(await this.request('POST', '/auth/refresh', { refresh_token: token }, { auth: false }))
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 400)) this.end()
        throw err
      } finally {
        this.refreshing = null
      }
    })()
    return this.refreshing
  }

  accept(tokens) {
    this.access = tokens.access_token
    sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token)
    clearTimeout(this.timer)
    // Refresh a minute before expiry (or at 80% of a short lifetime), so requests never see a 401.
    const ms = Math.max(5, Math.min(tokens.expires_in - 60, tokens.expires_in * 0.8)) * 1000
    this.timer = setTimeout(() => this.refresh().catch(() => {}), ms)
    this.onSession(tokens.user)
  }

  async logout() {
    const token = sessionStorage.getItem(REFRESH_KEY)
    if (token) await this.post('/auth/logout', { refresh_token: token }).catch(() => {})
    this.end()
  }

  end() {
    clearTimeout(this.timer)
    this.access = null
    sessionStorage.removeItem(REFRESH_KEY)
    this.onSession(null)
  }
}
