import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { textFrames } from '../src/realtime/text-frames.ts'

// A replay's page is framed by us and written to the TCP socket past ws (src/realtime/connection.ts): a ws client
// must read it as the same texts, whatever their length in bytes (each of the three header sizes) and characters.
t.test('frames built in one buffer arrive as the same texts, in order', async (t) => {
  const texts = ['', 'a', 'x'.repeat(125), 'y'.repeat(126), 'é'.repeat(63), '👩‍👩‍👧'.repeat(3000), 'z'.repeat(65535), 'w'.repeat(65536), '{"seq":1}']
  const wss = new WebSocketServer({ noServer: true })
  const server = createServer()
  server.on('upgrade', (req, tcp, head) => wss.handleUpgrade(req, tcp, head, () => tcp.write(textFrames(texts))))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`)
  const read: string[] = []
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data, isBinary) => {
      t.notOk(isBinary, 'a text frame')
      if (read.push(data.toString()) === texts.length) resolve()
    })
    ws.on('error', reject)
    ws.on('close', (code) => reject(new Error(`closed with ${code}`)))
  })
  ws.terminate()
  t.same(read, texts)
})
