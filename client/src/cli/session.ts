// The CLI's kept session: the instance's url, who signed in, and the token pair, in one file readable by its
// owner only. Refresh tokens rotate, so each new pair the SDK gets is written back before the command exits.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Tokens } from '../types.ts'

export interface Session extends Tokens {
  url: string
  user: { id: string; username: string }
}

/** `PARLEY_CONFIG`, else `$XDG_CONFIG_HOME/parley/session.json`, else `~/.config/parley/session.json`. */
export function sessionPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PARLEY_CONFIG) return env.PARLEY_CONFIG
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'parley', 'session.json')
}

export async function readSession(path = sessionPath()): Promise<Session | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Session
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Written whole to a private temporary file, then renamed: a reader never sees half a session. */
export async function writeSession(session: Session, path = sessionPath()): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(session, null, 2) + '\n', { mode: 0o600 })
  await rename(tmp, path)
}

export async function removeSession(path = sessionPath()): Promise<void> {
  await rm(path, { force: true })
}
