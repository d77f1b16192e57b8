// The peer: what a Node developer would pick for multi-node fan-out over PostgreSQL, Socket.IO with
// @socket.io/postgres-adapter. A node takes `POST /send {room, content}` and emits to the room; the
// adapter forwards the packet to the other nodes with NOTIFY. Nothing is stored: it is not a message log.
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/postgres-adapter'
import pg from 'pg'
import { Server } from 'socket.io'
import { sendRoute } from './lib.ts'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
pool.on('error', () => {})
// The table the adapter keeps packets over 8000 bytes in (none here), as its README creates it.
await pool.query('CREATE TABLE IF NOT EXISTS socket_io_attachments (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)')

const server = createServer(
  sendRoute((room, content) => {
    io.to(room).emit('message', content)
  }),
)
const io: Server = new Server(server, { transports: ['websocket'], adapter: createAdapter(pool) })
io.on('connection', (socket) => {
  socket.join((socket.handshake.auth as { rooms: string[] }).rooms)
})

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number }
  console.log(`listening on http://127.0.0.1:${port}`)
})
process.on('SIGTERM', () => {
  io.close()
  pool.end().finally(() => process.exit(0))
})
