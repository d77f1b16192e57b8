import type { Kysely } from 'kysely'

// This migration once applied triggers/*.sql as they were then. Those files are now repeatable scripts
// (db/repeatable.ts), applied after the migrations whenever they change, so that a versioned migration never
// depends on today's version of a file: on a new database the scripts create every function and trigger.
export async function up(_db: Kysely<any>): Promise<void> {}
