import argon2 from 'argon2'

// argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane): strong, and fast enough
// that a burst of logins does not stall a 2-core instance.
const OPTIONS = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const

export const hashPassword = (password: string) => argon2.hash(password, OPTIONS)

let dummyHash: Promise<string> | undefined

/** Verifies a password; with no hash (unknown user) it still spends the same time, so timing tells nothing. */
export async function verifyPassword(hash: string | undefined, password: string): Promise<boolean> {
  dummyHash ??= hashPassword('not-a-real-password-1A')
  const ok = await argon2.verify(hash ?? (await dummyHash), password).catch(() => false)
  return ok && hash !== undefined
}
