/**
 * Server-to-client WebSocket text frames (RFC 6455 §5.2: FIN, opcode 1, unmasked, no extensions), many in one
 * buffer. A replay's page leaves in one write: through ws, each frame is a header and a payload buffer, and a
 * page of 500 frames a writev of 1,000 chunks, which cost more than building the frames.
 */
export function textFrames(texts: readonly string[]): Buffer {
  const lengths = new Array<number>(texts.length)
  let total = 0
  for (let i = 0; i < texts.length; i++) {
    const n = (lengths[i] = Buffer.byteLength(texts[i]))
    total += n + headerLength(n)
  }
  const out = Buffer.allocUnsafe(total)
  let at = 0
  for (let i = 0; i < texts.length; i++) {
    const n = lengths[i]
    out[at++] = 0x81
    if (n < 126) out[at++] = n
    else if (n < 65536) {
      out[at++] = 126
      out.writeUInt16BE(n, at)
      at += 2
    } else {
      out[at++] = 127
      out.writeBigUInt64BE(BigInt(n), at)
      at += 8
    }
    at += out.write(texts[i], at)
  }
  return out
}

const headerLength = (n: number) => (n < 126 ? 2 : n < 65536 ? 4 : 10)
