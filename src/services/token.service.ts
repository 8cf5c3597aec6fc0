/**
 * Device tokens (protocol §1): JWT, HS256 only, signed with JWT_SECRET.
 * Claims: `sub` (user id, 1–128 chars), `plan` (`free` | `pro`, default free),
 * `exp` (optional, honoured).
 */
import { SignJWT, jwtVerify } from 'jose'
import type { Plan } from '../types/events.js'

export interface TokenClaims {
  userId: string
  plan: Plan
  /** Seconds since the epoch, when the token expires. */
  exp: number | undefined
}

export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError'
}

const encoder = new TextEncoder()

export async function verifyToken(secret: string, token: unknown): Promise<TokenClaims> {
  if (typeof token !== 'string' || token.length === 0) throw new InvalidTokenError('missing token')
  if (token.length > 8192) throw new InvalidTokenError('token too long')
  let payload
  try {
    // Pinning the algorithm refuses `alg: none` and key-confusion tokens.
    ;({ payload } = await jwtVerify(token, encoder.encode(secret), { algorithms: ['HS256'] }))
  } catch (err) {
    const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED'
    throw new InvalidTokenError(expired ? 'token expired' : 'invalid token signature or format', { cause: err })
  }
  const { sub, plan = 'free', exp } = payload as { sub?: unknown; plan?: unknown; exp?: number }
  if (typeof sub !== 'string' || sub.length < 1 || sub.length > 128) throw new InvalidTokenError('bad sub claim')
  if (plan !== 'free' && plan !== 'pro') throw new InvalidTokenError('bad plan claim')
  return { userId: sub, plan, exp }
}

export async function signToken(
  secret: string,
  claims: { userId: string; plan?: Plan; expiresIn?: string | number },
): Promise<string> {
  const jwt = new SignJWT({ plan: claims.plan ?? 'free' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.userId)
    .setIssuedAt()
  if (claims.expiresIn !== undefined) jwt.setExpirationTime(claims.expiresIn)
  return jwt.sign(encoder.encode(secret))
}
