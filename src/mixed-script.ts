import { createRequire } from 'node:module'

// Look-alike letters of other scripts ("аlice" with a Cyrillic а) pass for the real word. Following UTS #39's
// mixed-script detection, a word passes when one script (or one of the East Asian combinations, with Latin) could
// have written all its letters; characters every script uses (digits, punctuation, combining marks) count for any.

// Every Script value ECMAScript knows, as this package lists it (the data behind Babel's regexpu), tested against
// each character's Script_Extensions by the engine's own Unicode tables. A name the engine does not know is skipped.
const aliases = createRequire(import.meta.url)('unicode-property-value-aliases-ecmascript') as Map<string, Map<string, string>>
const SCRIPTS: Array<[string, RegExp]> = [...new Set(aliases.get('Script')!.values())].flatMap((name): Array<[string, RegExp]> => {
  try {
    return [[name, new RegExp(`^\\p{scx=${name}}$`, 'u')]]
  } catch {
    return []
  }
})
const ANY_SCRIPT = /^[\p{scx=Common}\p{scx=Inherited}\p{scx=Unknown}]$/u
const ASCII_LETTER = /^[A-Za-z]$/

// UTS #39's augmented script sets: Han goes with Japanese, Korean and Bopomofo writing; kana with Japanese; Hangul with Korean.
const AUGMENTED: Record<string, string[]> = {
  Han: ['Han_with_Bopomofo', 'Japanese', 'Korean'],
  Hiragana: ['Japanese'],
  Katakana: ['Japanese'],
  Hangul: ['Korean'],
  Bopomofo: ['Han_with_Bopomofo'],
}
// "Highly restrictive": Latin may join these (ロボットR2, Tシャツ).
const JOINS_LATIN = ['Japanese', 'Korean', 'Han_with_Bopomofo']

/** The scripts that could have written this character; undefined for one every script uses. */
function scriptsOf(char: string): Set<string> | undefined {
  if (char < '\u0080') return ASCII_LETTER.test(char) ? new Set(['Latin']) : undefined
  if (ANY_SCRIPT.test(char)) return undefined
  const scripts = new Set(SCRIPTS.filter(([, re]) => re.test(char)).map(([name]) => name))
  for (const script of [...scripts]) for (const extra of AUGMENTED[script] ?? []) scripts.add(extra)
  return scripts.size > 0 ? scripts : undefined
}

/** Whether one script could have written the whole word (Latin may join Japanese, Korean or Chinese with Bopomofo). */
export function isSingleScript(word: string): boolean {
  let shared: Set<string> | undefined
  let latin = false
  for (const char of word) {
    const scripts = scriptsOf(char)
    if (!scripts) continue
    // Latin letters are set aside, for Latin to join an East Asian combination below.
    if (scripts.size === 1 && scripts.has('Latin')) {
      latin = true
      continue
    }
    shared = shared ? new Set([...shared].filter((s) => scripts.has(s))) : scripts
    if (shared.size === 0) return false
  }
  return !latin || !shared || shared.has('Latin') || JOINS_LATIN.some((s) => shared.has(s))
}

/** The first space-separated word that mixes scripts, if any. */
export function mixedScriptWord(text: string): string | undefined {
  return text.split(/\s+/u).find((word) => !isSingleScript(word))
}
