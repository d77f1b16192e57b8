// What an idle Parley socket costs, byte by byte: `npx tsx bench/idle-sockets.ts` (about 2 minutes).
//
// This process is the server: Parley built in-process (idle-sockets/in-process.ts) on an embedded PostgreSQL.
// IDLE_SOCKETS users (default 10,000) in groups of 10, each with a real session, open one socket each from a child
// process (idle-sockets/clients.ts), so that the clients' memory is not the server's. The server then measures:
//   - RSS per socket as bench/run.ts measures it (3 s after the last open, no forced GC), and after a full GC;
//   - a heap snapshot before and after the sockets (v8.writeHeapSnapshot, which collects first). A third
//     process (this file, IDLE_MODE=analyze) parses both (heap-growth.ts: its own streaming parser, no library),
//     computes the dominator tree and attributes each byte of the heap's growth to the nearest dominating object
//     of a known kind (ws WebSocket, Receiver, net.Socket, IncomingMessage, Connection, the Hub...), then tallies
//     it by constructor.
// IDLE_SPAWN=1 measures as bench/run.ts does instead (idle-sockets/spawned.ts).
// Env: IDLE_SOCKETS, IDLE_KEEP=1 (keep the .heapsnapshot files; they are printed), IDLE_SNAPSHOT=0 (RSS only).
import { inspect, printGrowth } from './heap-growth.ts'
import { inProcess } from './idle-sockets/in-process.ts'
import { N } from './idle-sockets/setup.ts'
import { spawned } from './idle-sockets/spawned.ts'

const mode = process.env.IDLE_MODE
if (mode === 'analyze') printGrowth(process.env.IDLE_BEFORE!, process.env.IDLE_AFTER!, N)
else if (mode === 'inspect') inspect(process.env.IDLE_AFTER!, process.env.IDLE_OWNER!, process.env.IDLE_LABEL!)
else if (process.env.IDLE_SPAWN === '1') await spawned()
else await inProcess()
