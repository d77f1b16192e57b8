// The floor: the least this design can do per message. `POST /send {room, content}` is one statement that
// INSERTs the message and NOTIFYs it; one LISTEN connection per node hands each notification to the node's
// sockets in that room with ws.send. No framework, no auth, no seq, no validation.
import { createServer } from 'node:http'
import pg from 'pg'
import { WebSocketServer, type WebSocket } from 'ws'
import { sendRoute } from './lib.ts'

const url = process.env.DATABASE_URL
const pool = new pg.Pool({ connectionString: url, max: 10 })
pool.on('error', () => {})
await pool.query('CREATE TABLE IF NOT EXISTS floor_messages (id bigserial PRIMARY KEY, room text NOT NULL, content text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())')

const rooms = new Map<string, Set<WebSocket>>()
const listener = new pg.Client({ connectionString: url })
await listener.connect()
await listener.query('LISTEN floor')
listener.on('notification', (n) => {
  const payload = n.payload!
  // The room is the first field: no need to parse the whole payload to route it.
  const room = /"room" : "([^"]+)"/.exec(payload)![1]
  for (const ws of rooms.get(room) ?? []) ws.send(payload)
})

const server = createServer(
  sendRoute((room, content) =>
    pool.query(
      `WITH m AS (INSERT INTO floor_messages (room, content) VALUES ($1, $2) RETURNING id, room, content)
       SELECT pg_notify('floor', json_build_object('room', room, 'id', id, 'content', content)::text) FROM m`,
      [room, content],
    ),
  ),
)
const wss = new WebSocketServer({ server })
wss.on('connection', (ws, req) => {
  const joined = new URL(req.url!, 'http://x').searchParams.get('rooms')!.split(',')
  for (const room of joined) {
    if (!rooms.has(room)) rooms.set(room, new Set())
    rooms.get(room)!.add(ws)
  }
  ws.on('close', () => joined.forEach((room) => rooms.get(room)?.delete(ws)))
})

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number }
  console.log(`listening on http://127.0.0.1:${port}`)
})
process.on('SIGTERM', () => {
  wss.close()
  server.close()
  Promise.all([listener.end(), pool.end()]).finally(() => process.exit(0))
})
