// Mints bearer tokens for tests with the same library and secret the Worker verifies with.
import { SignJWT } from "jose";
import { env } from "cloudflare:workers";
import type { Role } from "../../src/platform/auth";

export interface TokenClaims {
  sub: string;
  tenant_id: string;
  role: Role;
}

export async function mintToken(
  claims: TokenClaims,
  options: { expiresIn?: string | number; issuedAt?: number; secret?: string; extra?: Record<string, unknown> } = {},
): Promise<string> {
  const jwt = new SignJWT({ tenant_id: claims.tenant_id, role: claims.role, ...options.extra })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(claims.sub)
    .setIssuedAt(options.issuedAt);
  jwt.setExpirationTime(options.expiresIn ?? "1h");
  return jwt.sign(new TextEncoder().encode(options.secret ?? env.JWT_SECRET));
}
