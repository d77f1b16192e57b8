// REST calls, through the SDK's client of the session (its access token, one refresh and a second try after a
// 401, a timeout). The page's modules name concrete paths, so they use openapi-fetch's untyped `request`.
import { ParleyError, unwrap } from './parley-client.js'

export { ParleyError as ApiError }

const signedOut = () => new ParleyError('SIGNED_OUT', 'Not signed in', 401)

export class Api {
  /** The session's ParleyClient (session.js); null when signed out. */
  client = null

  request(method, url, body) {
    if (!this.client) return Promise.reject(signedOut())
    return unwrap(this.client.rest.request(method, url, body === undefined ? {} : { body }))
  }

  get = (url) => this.request('get', url)
  post = (url, body) => this.request('post', url, body)
  patch = (url, body) => this.request('patch', url, body)
  del = (url) => this.request('delete', url)

  /**
   * A multipart upload of one file, in the field `file`. By XMLHttpRequest, as fetch() reports no upload
   * progress: `onProgress` gets the fraction sent, from 0 to 1.
   */
  async upload(url, file, onProgress, retry = true) {
    const tokens = this.client?.tokens
    if (!tokens) throw signedOut()
    const form = new FormData()
    form.append('file', file)
    const access = await tokens.access()
    const { status, text } = await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest()
      xhr.open('POST', url)
      xhr.setRequestHeader('authorization', `Bearer ${access}`)
      if (onProgress) xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total) }
      xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText })
      xhr.onerror = () => reject(new ParleyError('NETWORK', 'Network error'))
      xhr.send(form)
    })
    if (status === 401 && retry) {
      await tokens.refresh()
      return this.upload(url, file, onProgress, false)
    }
    const data = text ? JSON.parse(text) : undefined
    if (status < 200 || status >= 300) throw new ParleyError(data?.code ?? 'HTTP_ERROR', data?.error ?? `HTTP ${status}`, status, data?.details)
    return data
  }
}
