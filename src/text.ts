// Text that other people will read as a name (display names, file names): one rule for all of them, so a
// name cannot carry characters that change how the text around it looks.

// C0 and C1 controls; zero-width and joiner characters outside emoji sequences are dealt with below;
// bidi embeddings, overrides and isolates (U+202A–202E, U+2066–2069), marks (U+200E, U+200F, U+061C);
// the BOM / zero-width no-break space, the word joiner and invisible operators (U+2060–2064), U+180E; the soft
// hyphen, the combining grapheme joiner, the Hangul fillers and Khmer's invisible vowels, which render as nothing.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0]/gu
// Tag characters are invisible but for the subdivision flags (🏴 and tags, e.g. England's): kept only there.
const STRAY_TAGS = /(?<![\u{1f3f4}\u{e0020}-\u{e007f}])[\u{e0000}-\u{e007f}]+/gu
// A zero-width joiner or non-joiner is kept only between two letters or emoji, where scripts and emoji need it.
const STRAY_JOINER = /(?<![\p{L}\p{M}\p{Extended_Pictographic}\u{1f3fb}-\u{1f3ff}\ufe0f])[\u200c\u200d]|[\u200c\u200d](?![\p{L}\p{M}\p{Extended_Pictographic}])/gu
const SPACES = /[\p{Zs}\u2028\u2029\t]+/gu

/** NFC, without controls, bidi overrides or invisible characters, with runs of white space as one space, trimmed. */
export function normalizeName(text: string): string {
  return text.normalize('NFC').replace(INVISIBLE, '').replace(STRAY_TAGS, '').replace(STRAY_JOINER, '').replace(SPACES, ' ').trim()
}
