// The clients of bench/idle-sockets.ts: one process (forked, so that their memory is not the server's), a socket
// to each URL of the file IDLE_URLS, opened 100 at a time; it says how many are open, then idles until told to close.
import { readFile } from 'node:fs/promises'
import WebSocket from 'ws'

const urls = JSON.parse(await readFile(process.env.IDLE_URLS!, 'utf8')) as string[]
const sockets: InstanceType<typeof WebSocket>[] = []
let next = 0
const open = (url: string) =>
  new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('close', (code) => reject(new Error(`closed ${code} before open`)))
    sockets.push(ws)
  })
await Promise.all(Array.from({ length: 100 }, async () => {
  while (next < urls.length) await open(urls[next++])
}))
process.send!({ open: sockets.length })
process.on('message', () => {
  for (const ws of sockets) ws.terminate()
  process.exit(0)
})
