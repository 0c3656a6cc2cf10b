// R2 behind a small interface: content-addressed puts, verified reads, and every R2 failure reported as the content tier being unavailable.
import { AppError, tierUnavailable } from "../../../core/errors";
import { decode, encodeBest, type CompressionAlgorithm } from "../compression";

/** The slice of an R2 bucket the content tier uses; the Worker passes its binding. */
export type ContentBucket = Pick<R2Bucket, "head" | "put" | "get" | "delete">;

export interface EncodedObject {
  hash: string;
  storageKey: string;
  rawSize: number;
  storedSize: number;
  algorithm: CompressionAlgorithm;
  bytes: Uint8Array;
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

export async function sha256(bytes: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

/** Tenant first, so a tenant's objects can be listed, exported or erased by prefix, and never shared across tenants. */
export const storageKey = (tenantId: string, hash: string) => `tenants/${tenantId}/objects/${hash}`;

export async function encodeObject(tenantId: string, raw: Uint8Array, exhaustiveBytes: number): Promise<EncodedObject> {
  const hash = await sha256(raw);
  const { algorithm, bytes } = encodeBest(raw, exhaustiveBytes);
  return { hash, storageKey: storageKey(tenantId, hash), rawSize: raw.byteLength, storedSize: bytes.byteLength, algorithm, bytes };
}

async function r2<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw tierUnavailable("content", error);
  }
}

/**
 * Writes each object unless its key already holds it (same tenant, same hash: same bytes). Returns the
 * keys this call created, the only ones a failed write may clean up: the others may belong to committed emails.
 */
export async function putObjects(bucket: ContentBucket, objects: EncodedObject[]): Promise<string[]> {
  const unique = [...new Map(objects.map((o) => [o.storageKey, o])).values()];
  const created = await Promise.all(
    unique.map(async (object) => {
      if (await r2(() => bucket.head(object.storageKey))) return null;
      await r2(() =>
        bucket.put(object.storageKey, object.bytes, {
          customMetadata: { algorithm: object.algorithm, sha256: object.hash, rawSize: String(object.rawSize) },
        }),
      );
      return object.storageKey;
    }),
  );
  return created.filter((key): key is string => key !== null);
}

export async function deleteObjects(bucket: ContentBucket, keys: string[]): Promise<void> {
  if (keys.length > 0) await r2(() => bucket.delete(keys));
}

/** Raised when stored bytes do not hash to their address: never served, always reported. */
export class IntegrityError extends AppError {
  constructor(readonly storageKey: string, readonly expected: string, readonly actual: string) {
    super("INTERNAL", "Stored content failed its integrity check", { tier: "content" });
  }
}

/** Reads, decodes and verifies one object; null when R2 no longer has it. */
export async function readObject(bucket: ContentBucket, key: string, hash: string, algorithm: string): Promise<Uint8Array | null> {
  const object = await r2(() => bucket.get(key));
  if (!object) return null;
  const stored = new Uint8Array(await r2(() => object.arrayBuffer()));
  let raw: Uint8Array;
  try {
    raw = decode(algorithm, stored);
  } catch {
    throw new IntegrityError(key, hash, "undecodable");
  }
  const actual = await sha256(raw);
  if (actual !== hash) throw new IntegrityError(key, hash, actual);
  return raw;
}
