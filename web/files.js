// Signed /files URLs for what the browser loads without our header: <img>, <video>, download links. An
// access token never goes into a URL (URLs end up in logs); GET /files/{id}/url gives a URL that opens one
// file for a few minutes. The server gives the same URL for a while, so an image shown again comes from the
// browser's cache; each is asked for again shortly before it expires, or when loading it fails.

/** How long before its expiry a URL is replaced, in ms. */
const MARGIN = 30_000

export class FileLinks {
  /** '/files/{id}' → { url: Promise<string>, value?: string, expires: ms } */
  links = new Map()

  constructor(api) {
    this.api = api
    // Errors do not bubble: caught on the way down, for every element shown by show().
    document.addEventListener('error', (e) => this.failed(e.target), true)
    // Download links are followed by the browser: keep their URLs fresh, also after the tab slept.
    setInterval(() => this.renew(), MARGIN / 2)
    document.addEventListener('visibilitychange', () => { if (!document.hidden) this.renew() })
    document.addEventListener('click', (e) => this.stale(e), true)
  }

  /** A URL of the file that works for at least MARGIN more; `fresh` asks the server again. */
  url(fileUrl, fresh = false) {
    const known = this.links.get(fileUrl)
    if (known && !fresh && known.expires - Date.now() > MARGIN) return known.url
    const entry = { expires: Infinity }
    entry.url = this.api.get(`${fileUrl}/url`).then(
      (link) => {
        entry.value = link.url
        entry.expires = Date.parse(link.expires_at)
        return link.url
      },
      (err) => {
        if (this.links.get(fileUrl) === entry) this.links.delete(fileUrl)
        throw err
      },
    )
    this.links.set(fileUrl, entry)
    return entry.url
  }

  /** The URL now, if one is known and fresh: what to render with, without waiting. */
  known(fileUrl) {
    const entry = this.links.get(fileUrl)
    return entry?.value && entry.expires - Date.now() > MARGIN ? entry.value : undefined
  }

  /** Asks for the URLs of these files at once, so that what shows them has them when it renders. */
  prefetch(fileUrls) {
    return Promise.all([...new Set(fileUrls)].filter((f) => f && !this.known(f)).map((f) => this.url(f).catch(() => {})))
  }

  /** Points `el[attr]` (src or href) at the file: at once if its URL is known, else when it comes. */
  show(el, attr, fileUrl, fresh = false) {
    el.dataset.file = fileUrl
    el.dataset.attr = attr
    const now = !fresh && this.known(fileUrl)
    if (now) return this.set(el, now)
    this.url(fileUrl, fresh).then((url) => { if (el.dataset.file === fileUrl && el.isConnected) this.set(el, url) }, () => {})
  }

  /**
   * An image's preview rather than the image: GET /files/{id}/thumbnail has the file's readers, so the file's
   * signed URL opens it too, and the full file is loaded only when it is opened.
   */
  showPreview(img, fileUrl) {
    img.dataset.variant = 'thumbnail'
    this.show(img, 'src', fileUrl)
  }

  /** The URL an element loads: the file's, or its preview's. */
  target(el, url) {
    return el.dataset.variant === 'thumbnail' ? url.replace(/^([^?]*\/files\/[^/?]+)(?=\?|$)/, '$1/thumbnail') : url
  }

  set(el, url) {
    el.dataset.expires = String(this.links.get(el.dataset.file)?.expires ?? 0)
    const target = this.target(el, url)
    if (el[el.dataset.attr] !== target) el[el.dataset.attr] = target
  }

  /** A picture or a video that did not load (its URL expired, or the file is gone): once more, with a new URL. */
  failed(el) {
    // Gone from the page (a conversation left or closed): nothing to load again, and it may no longer be mine to read.
    if (!(el instanceof HTMLElement) || !el.isConnected || !el.dataset.file || el.dataset.attr !== 'src') return
    if (el.dataset.retried === el.src) return
    el.dataset.retried = el.src
    const { currentTime, paused } = el instanceof HTMLVideoElement ? el : {}
    this.url(el.dataset.file, true).then((url) => {
      url = this.target(el, url)
      if (new URL(url, location.href).href === el.src) return
      el.src = url
      if (currentTime) el.currentTime = currentTime
      if (paused === false) el.play().catch(() => {})
    }, () => {})
  }

  renew() {
    for (const a of document.querySelectorAll('a[data-file]')) {
      if (Number(a.dataset.expires) - Date.now() < 2 * MARGIN) this.show(a, 'href', a.dataset.file)
    }
  }

  /** A download whose URL expired while timers slept: follow a new one instead. */
  stale(e) {
    const a = e.target instanceof Element && e.target.closest('a[data-file][download]')
    if (!a || Number(a.dataset.expires) > Date.now() + 5000) return
    e.preventDefault()
    this.url(a.dataset.file, true).then((url) => {
      this.set(a, url)
      window.open(url, '_blank', 'noopener')
    }, () => {})
  }

  /** Signed out: the URLs were someone else's. */
  clear() {
    this.links.clear()
  }
}
