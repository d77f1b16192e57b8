// http_ece (web-push's encryption, RFC 8188) ships no types: the part of its API the tests use to decrypt as a browser does.
declare module 'http_ece' {
  import type { ECDH } from 'node:crypto'
  export function decrypt(buffer: Buffer, params: { version: 'aes128gcm'; privateKey: ECDH; authSecret: string }): Buffer
}
