// Bearer tokens for the local stack and the benchmarks, signed the way the Worker verifies them (HS256, JWT_SECRET).
import { SignJWT } from "jose";

export interface TokenClaims {
  sub: string;
  tenant_id: string;
  role: "member" | "admin" | "operator";
}

export function mintToken(secret: string, claims: TokenClaims, ttl = "2h"): Promise<string> {
  return new SignJWT({ tenant_id: claims.tenant_id, role: claims.role })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(new TextEncoder().encode(secret));
}
