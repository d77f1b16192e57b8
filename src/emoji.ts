// What a reaction may be (API.md, "Rules"): one emoji grapheme or a `:short_code:`.

const SHORT_CODE = /^:[A-Za-z0-9_+-]{1,30}:$/
// Unicode's recommended emoji, each one grapheme whatever its code points: a flag (two regional indicators), a
// skin tone, a keycap, a ZWJ family. Two emoji do not match, nor does a letter or a digit alone.
// (Built from a string: the `v` flag is Node 20's, but TypeScript knows it only from target ES2024, which would
// also type-check library calls Node 20 lacks.)
const ONE_EMOJI = new RegExp('^\\p{RGI_Emoji}$', 'v')
const VARIATION_SELECTOR_16 = '\ufe0f'

/**
 * The reaction's key, or undefined if `text` is not one. An emoji typed without its emoji presentation selector
 * (❤ for ❤️, as some keyboards send it) is the same reaction as with it: it is stored with the selector.
 */
export function reactionKey(text: string): string | undefined {
  if (SHORT_CODE.test(text)) return text
  const emoji = text.normalize('NFC')
  if (ONE_EMOJI.test(emoji)) return emoji
  if (ONE_EMOJI.test(emoji + VARIATION_SELECTOR_16)) return emoji + VARIATION_SELECTOR_16
  return undefined
}
