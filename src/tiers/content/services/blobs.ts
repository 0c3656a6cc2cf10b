// R2 behind a small interface: content-addressed puts, verified reads, and every R2 failure reported as the content tier being unavailable.
import { AppError, tierUnavailable } from "../../../platform/errors";
import { decode, encodeBest, type CompressionAlgorithm } from "../compression";
import { compressionAlgorithms } from "../schema";

/** The slice of an R2 bucket the content tier uses; the Worker passes its binding. */
export type ContentBucket = Pick<R2Bucket, "head" | "put" | "get" | "delete">;

/**
 * An object as the write sees it before R2: its address and raw bytes, encoded only if R2 lacks it.
 * `raw` is null for a streamed upload the email refers to by hash: R2 must already hold it.
 */
export interface HashedObject {
  hash: string;
  storageKey: string;
  raw: Uint8Array | null;
  /** The template to try as its compression dictionary (campaign renders). */
  dictionary?: Dictionary | undefined;
}

/** What the catalog records of an object: how it is stored in R2. */
export interface StoredObject {
  hash: string;
  storageKey: string;
  rawSize: number;
  storedSize: number;
  algorithm: CompressionAlgorithm;
  /** The template object whose bytes decode a `deflate-dict` object; null for every other algorithm. */
  dictionaryHash: string | null;
}

export interface EncodedObject extends StoredObject {
  bytes: Uint8Array;
}

/** A template offered as the compression dictionary of a campaign render, with its content address. */
export interface Dictionary {
  hash: string;
  bytes: Uint8Array;
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

export async function sha256(bytes: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

/** Tenant first, so a tenant's objects can be listed, exported or erased by prefix, and never shared across tenants. */
export const storageKey = (tenantId: string, hash: string) => `tenants/${tenantId}/objects/${hash}`;

export type HashedBytes = HashedObject & { raw: Uint8Array };

export async function hashObject(tenantId: string, raw: Uint8Array, dictionary?: Dictionary): Promise<HashedBytes> {
  const hash = await sha256(raw);
  return { hash, storageKey: storageKey(tenantId, hash), raw, dictionary };
}

export function encodeObject(object: HashedBytes, exhaustiveBytes: number): EncodedObject {
  const { algorithm, bytes } = encodeBest(object.raw, exhaustiveBytes, object.dictionary?.bytes);
  const dictionaryHash = algorithm === "deflate-dict" ? object.dictionary!.hash : null;
  return { hash: object.hash, storageKey: object.storageKey, rawSize: object.raw.byteLength, storedSize: bytes.byteLength, algorithm, dictionaryHash, bytes };
}

/** The metadata every put writes beside an object, from which a later write or read learns how it is stored. */
export const objectMetadata = (o: StoredObject): Record<string, string> => ({
  algorithm: o.algorithm,
  sha256: o.hash,
  rawSize: String(o.rawSize),
  ...(o.dictionaryHash ? { dictionarySha256: o.dictionaryHash } : {}),
});

async function r2<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw tierUnavailable("content", error);
  }
}

const algorithms: readonly string[] = compressionAlgorithms;

/** How an object R2 already holds was stored, from the metadata its put wrote; null if that metadata is not ours. */
function storedFrom(object: HashedObject, head: R2Object): StoredObject | null {
  const meta = head.customMetadata ?? {};
  if (!meta.algorithm || !algorithms.includes(meta.algorithm)) return null;
  const algorithm = meta.algorithm as CompressionAlgorithm;
  const dictionaryHash = algorithm === "deflate-dict" ? (meta.dictionarySha256 ?? null) : null;
  const rawSize = Number(meta.rawSize);
  if ((algorithm === "deflate-dict" && !dictionaryHash) || !Number.isSafeInteger(rawSize)) return null;
  return { hash: object.hash, storageKey: object.storageKey, rawSize, storedSize: head.size, algorithm, dictionaryHash };
}

/**
 * Writes each object unless its key already holds it (same tenant, same hash: same bytes), encoding only
 * those it writes: a shared attachment or a repeated template costs a hash and a `head`, not a compression.
 * Returns how every object is stored and the keys this call created, the only ones a failed write may
 * clean up: the others may belong to committed emails.
 */
export async function putObjects(
  bucket: ContentBucket,
  objects: HashedObject[],
  exhaustiveBytes: number,
): Promise<{ created: string[]; stored: Map<string, StoredObject> }> {
  const unique = [...new Map(objects.map((o) => [o.storageKey, o])).values()];
  const results = await Promise.all(
    unique.map(async (object) => {
      const existing = await r2(() => bucket.head(object.storageKey));
      const known = existing && storedFrom(object, existing);
      if (known) return { stored: known, created: false };
      const { raw } = object;
      if (!raw) {
        throw new AppError("NOT_FOUND", "No uploaded attachment has this sha256; upload it first", { tier: "content", details: { sha256: object.hash } });
      }
      const encoded = encodeObject({ ...object, raw }, exhaustiveBytes);
      const { bytes: _bytes, ...stored } = encoded;
      await r2(() => bucket.put(object.storageKey, encoded.bytes, { customMetadata: objectMetadata(stored) }));
      return { stored, created: true };
    }),
  );
  return {
    created: results.filter((r) => r.created).map((r) => r.stored.storageKey),
    stored: new Map(results.map((r) => [r.stored.hash, r.stored])),
  };
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

/** Reads, decodes and verifies one object; null when R2 no longer has it. `dictionary` decodes `deflate-dict`. */
export async function readObject(bucket: ContentBucket, key: string, hash: string, algorithm: string, dictionary?: Uint8Array): Promise<Uint8Array | null> {
  const object = await r2(() => bucket.get(key));
  if (!object) return null;
  const stored = new Uint8Array(await r2(() => object.arrayBuffer()));
  let raw: Uint8Array;
  try {
    raw = decode(algorithm, stored, dictionary);
  } catch {
    throw new IntegrityError(key, hash, "undecodable");
  }
  const actual = await sha256(raw);
  if (actual !== hash) throw new IntegrityError(key, hash, actual);
  return raw;
}
