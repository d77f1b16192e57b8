import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createDatabase } from '../src/database.ts'

/** The OpenAPI document as YAML, from the route schemas. No database is contacted. */
export async function openapiYaml(): Promise<string> {
  const config = loadConfig({ NODE_ENV: 'test' })
  const { db } = createDatabase('postgres://unused@127.0.0.1:1/unused', 1)
  const app = await buildApp({ config, db, jwtSecret: 'x'.repeat(32) })
  await app.ready()
  const yaml = app.swagger({ yaml: true })
  await app.close()
  await db.destroy()
  return yaml
}
