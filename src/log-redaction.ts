// A parameter is masked when its name, as the server decodes it, says it holds a credential (`sig`: a signed file URL's).
const SECRET_NAME = /token|password|secret|^sig$/i

const decodedName = (name: string): string => {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '))
  } catch {
    return name
  }
}

/**
 * The URL as it may be logged: the value of every query parameter named like a token, password or secret is
 * `[redacted]`. The query starts where the router starts it (the first `?` or `#`) and is cut at `&`, as the
 * query parser cuts it, and at `?` and `#` too, so that nothing that looks like a parameter gets through. One pass,
 * with no regular expression that can backtrack: the cost grows with the URL's length, never with its square
 * (the log line of every request, /health/* too, goes through here).
 */
export function redactUrl(url: string): string {
  const start = url.search(/[?#]/)
  if (start === -1) return url
  // With a capture group, split keeps the separators: parameters sit at the even indexes.
  const parts = url.slice(start + 1).split(/([&?#])/)
  for (let i = 0; i < parts.length; i += 2) {
    const eq = parts[i].indexOf('=')
    if (eq !== -1 && SECRET_NAME.test(decodedName(parts[i].slice(0, eq)))) parts[i] = `${parts[i].slice(0, eq)}=[redacted]`
  }
  return url.slice(0, start + 1) + parts.join('')
}
