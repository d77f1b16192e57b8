// A message's text as DOM nodes: links (http, https and mailto only, opened safely) and @mentions of members.
// Never innerHTML: every piece of user text becomes a text node.
import { h } from './dom.js'

const TOKEN = /\b(?:https?:\/\/|mailto:)[^\s<>"]+|(?<![\w.@])@\w{3,32}\b/gi
const SAFE = new Set(['http:', 'https:', 'mailto:'])

/** The URL when it is one a click may open, else null (so `javascript:` and friends stay text). */
export function safeUrl(text) {
  try {
    const url = new URL(text)
    return SAFE.has(url.protocol) ? url.href : null
  } catch {
    return null
  }
}

/**
 * `content` with links and mentions: `mentioned` maps lower-case usernames of the members the message mentions
 * (the server's `mentions`) to their ids; `me` is my id, for highlighting mentions of me.
 */
export function richText(content, mentioned = new Map(), me = null) {
  const nodes = []
  let at = 0
  for (const match of content.matchAll(TOKEN)) {
    let token = match[0]
    if (token.startsWith('@')) {
      const id = mentioned.get(token.slice(1).toLowerCase())
      if (!id) continue
      if (match.index > at) nodes.push(content.slice(at, match.index))
      nodes.push(h(`span.mention${id === me ? '.me' : ''}`, { dataset: { user: id } }, token))
      at = match.index + token.length
      continue
    }
    // Trailing punctuation ends a sentence, not the link.
    token = token.replace(/[.,;:!?)\]}'"]+$/, '')
    const href = safeUrl(token)
    if (!href) continue
    if (match.index > at) nodes.push(content.slice(at, match.index))
    nodes.push(h('a.link', { href, target: '_blank', rel: 'noopener noreferrer' }, token))
    at = match.index + token.length
  }
  if (at < content.length) nodes.push(content.slice(at))
  return nodes
}
