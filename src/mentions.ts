// Who a message names (API.md, "Rules": mentions): `@username`, not inside a word and not in an e-mail address.
// The names only; which of them are current members is the database's to say (parley_members_named).

// Usernames are 3–32 of A–Z a–z 0–9 _ (db/migrations/0001-schema.ts). Before the @: not a letter, digit, `_`, `.`
// or another @ (bob@example.com, a.b@c); after the name: not more of a name, nor an @ (@bob@example.com).
const MENTION = /(?<![\p{L}\p{N}_.@])@([A-Za-z0-9_]{3,32})(?![A-Za-z0-9_@])/gu

/** The distinct usernames written as @name in the text, lower-cased (usernames are unique case-insensitively). */
export function mentionNames(text: string | null | undefined): string[] {
  if (!text || !text.includes('@')) return []
  return [...new Set(Array.from(text.matchAll(MENTION), (m) => m[1].toLowerCase()))]
}
