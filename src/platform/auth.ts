// Bearer JWT verification per the auth contract: HS256 with JWT_SECRET, or a JWKS URL in production.
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { z } from "zod";
import { uuid } from "./inputs";
import type { Env } from "./env";
import { AppError } from "./errors";

export const roles = ["member", "admin", "operator"] as const;
export type Role = (typeof roles)[number];

export const claimsSchema = z.object({
  sub: uuid(),
  tenant_id: uuid(),
  role: z.enum(roles),
  exp: z.number().int(),
});

/** Who is calling, as every procedure and service sees it. */
export interface Principal {
  userId: string;
  tenantId: string;
  role: Role;
  /** An API key with the read scope: queries only. */
  readOnly?: boolean;
  /** True when the caller is an API key (then `userId` is the key's id): its use goes to the forensic log. */
  apiKey?: boolean;
}

/** A credential checked locally (a JWT's signature and claims, an API key's format), before its membership is. */
export type Credential =
  | { kind: "token"; claims: Principal }
  /** tenantId null: a key issued before keys carried their tenant. */
  | { kind: "apiKey"; tenantId: string | null; hash: string };

const jwksCache = new Map<string, JWTVerifyGetKey>();

/** HS256 keys imported once per secret and isolate: importKey on every request costs more than the verify itself. */
const hmacKeys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    key.catch(() => hmacKeys.delete(secret));
    hmacKeys.set(secret, key);
  }
  return key;
}

function keyFor(env: Env): Promise<CryptoKey> | JWTVerifyGetKey {
  if (env.JWT_JWKS_URL) {
    let jwks = jwksCache.get(env.JWT_JWKS_URL);
    if (!jwks) {
      jwks = createRemoteJWKSet(new URL(env.JWT_JWKS_URL));
      jwksCache.set(env.JWT_JWKS_URL, jwks);
    }
    return jwks;
  }
  return hmacKey(env.JWT_SECRET ?? "");
}

export function bearerToken(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new AppError("AUTH_TOKEN_INVALID", "Authorization header must be 'Bearer <token>'");
  return match[1];
}

/**
 * Tokens this isolate has verified, by verification settings and then by the whole token string (signature
 * included), so a token is checked once, not on every call of a session: a browser polling the badge, a client
 * calling tRPC, present the same token for its whole life. Only successes are kept, so a forged token costs a
 * verify each time and can never occupy the cache. What a cached token still gets on every call: its expiry against
 * the clock (the one claim that changes with time), and the membership lookup that follows (role, removal, tenant
 * status), which is where revocation lives. A changed secret, JWKS URL, issuer, audience or skew is another cache.
 * With a JWKS, a token is re-verified at least every JWKS_RECHECK_S, so a key withdrawn from the set stops
 * verifying within that time (jose itself refetches the set no more often than every 10 minutes).
 * Bounded: past MAX_VERIFIED entries the oldest goes (a Map keeps insertion order). A hand-written map because an
 * LRU library would add a dependency for these few lines and insertion order is good enough here.
 */
const MAX_VERIFIED = 2_000;
const JWKS_RECHECK_S = 300;
interface Verified {
  principal: Principal;
  exp: number;
  /** After this (epoch seconds) the signature is checked again. */
  recheckAt: number;
}
const verifiedBySettings = new Map<string, Map<string, Verified>>();
let signatureChecks = 0;

/** How many tokens this isolate has checked with jose (cache misses): tests read it to see the cache work. */
export const tokenSignatureChecks = () => signatureChecks;

function settingsKey(env: Env): string {
  return JSON.stringify([env.JWT_JWKS_URL ?? null, env.JWT_JWKS_URL ? null : (env.JWT_SECRET ?? ""), env.JWT_ISSUER ?? null, env.JWT_AUDIENCE ?? null, env.JWT_CLOCK_SKEW_SECONDS]);
}

/**
 * The caller a bearer JWT stands for, or AUTH_TOKEN_EXPIRED / AUTH_TOKEN_INVALID / AUTH_CLAIMS_INVALID. Token times
 * are the issuer's real time, so `nowS` is the real clock's (a parameter so tests can move it).
 */
export async function verifyToken(token: string, env: Env, nowS: number = Date.now() / 1000): Promise<Principal> {
  const key = settingsKey(env);
  let verified = verifiedBySettings.get(key);
  const hit = verified?.get(token);
  if (hit && nowS < hit.recheckAt) {
    if (hit.exp + env.JWT_CLOCK_SKEW_SECONDS <= nowS) {
      verified!.delete(token);
      throw new AppError("AUTH_TOKEN_EXPIRED", "Token has expired");
    }
    return { ...hit.principal };
  }
  const checked = await checkToken(token, env, nowS);
  if (!verified) {
    // One settings key per deployment in practice; a handful at most across rotations.
    if (verifiedBySettings.size >= 4) verifiedBySettings.clear();
    verified = new Map();
    verifiedBySettings.set(key, verified);
  }
  verified.delete(token);
  if (verified.size >= MAX_VERIFIED) verified.delete(verified.keys().next().value!);
  verified.set(token, { ...checked, recheckAt: env.JWT_JWKS_URL ? nowS + JWKS_RECHECK_S : Number.POSITIVE_INFINITY });
  return { ...checked.principal };
}

async function checkToken(token: string, env: Env, nowS: number): Promise<{ principal: Principal; exp: number }> {
  signatureChecks++;
  let payload: unknown;
  try {
    const key = keyFor(env);
    const options = {
      algorithms: env.JWT_JWKS_URL ? ["RS256", "ES256", "EdDSA"] : ["HS256"],
      requiredClaims: ["exp"],
      clockTolerance: env.JWT_CLOCK_SKEW_SECONDS,
      currentDate: new Date(nowS * 1000),
      ...(env.JWT_ISSUER ? { issuer: env.JWT_ISSUER } : {}),
      ...(env.JWT_AUDIENCE ? { audience: env.JWT_AUDIENCE } : {}),
    };
    ({ payload } = typeof key === "function" ? await jwtVerify(token, key, options) : await jwtVerify(token, await key, options));
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) {
      throw new AppError("AUTH_TOKEN_EXPIRED", "Token has expired", { cause: error });
    }
    throw new AppError("AUTH_TOKEN_INVALID", "Token is invalid", { cause: error });
  }
  // jose checks `iat` only against a maximum age; a token issued in the future (beyond the skew) is forged or
  // minted on a broken clock either way.
  const iat = (payload as { iat?: unknown }).iat;
  if (typeof iat === "number" && iat > nowS + env.JWT_CLOCK_SKEW_SECONDS) {
    throw new AppError("AUTH_TOKEN_INVALID", "Token is invalid: issued in the future");
  }
  const claims = claimsSchema.safeParse(payload);
  if (!claims.success) {
    throw new AppError("AUTH_CLAIMS_INVALID", "Token claims are invalid", {
      details: claims.error.issues.map((i) => ({ claim: i.path.join("."), problem: i.message })),
    });
  }
  return { principal: { userId: claims.data.sub, tenantId: claims.data.tenant_id, role: claims.data.role }, exp: claims.data.exp };
}

/** operator ⊃ admin ⊃ member: an operator may do what a tenant admin may. */
export function hasRole(principal: Principal, needed: Role): boolean {
  const order: Record<Role, number> = { member: 0, admin: 1, operator: 2 };
  return order[principal.role] >= order[needed];
}
