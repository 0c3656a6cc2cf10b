// Large attachments without whole-file buffering: a streamed upload into R2 (length cap and SHA-256 checked as bytes pass) and a streamed download.
import { AppError, tierUnavailable } from "../../../platform/errors";
import type { TenantScope } from "../../../platform/db";
import type { ContentConfig } from "../config";
import { IntegrityError, objectMetadata, storageKey, type ContentBucket } from "./blobs";
import { attachmentPart, readPart, type ContentReadDeps } from "./reads";

export interface UploadedAttachment {
  sha256: string;
  size: number;
  /** False when the tenant already held these bytes: the body was not read. */
  created: boolean;
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Streams a request body into R2 at the tenant's content address for `sha256`, stored raw (large files
 * are mostly already compressed, and a compressed stream has no length for R2 to take). The declared
 * Content-Length must be within the cap; a FixedLengthStream makes R2 refuse a body longer or shorter than
 * declared, and R2's own sha256 check refuses bytes that do not hash to the address, so nothing partial
 * or mislabelled is ever committed. The digest computed on the way says which of the two went wrong.
 * Emails then refer to the file by `sha256`; its catalog row comes with the first email that does.
 */
export async function uploadAttachment(
  bucket: ContentBucket,
  config: ContentConfig,
  tenantId: string,
  upload: { sha256: string; mimeType: string; contentLength: number | null; body: ReadableStream<Uint8Array> | null },
): Promise<UploadedAttachment> {
  const invalid = (path: string, message: string) => new AppError("VALIDATION_FAILED", `${path}: ${message}`, { details: [{ path, message }] });
  if (!/^[0-9a-f]{64}$/.test(upload.sha256)) throw invalid("sha256", "64 lowercase hex digits");
  if (!config.allowedAttachmentTypes.includes(upload.mimeType)) throw invalid("Content-Type", `attachments of type ${upload.mimeType} are not accepted`);
  if (upload.contentLength === null || !Number.isSafeInteger(upload.contentLength) || upload.contentLength < 0) throw invalid("Content-Length", "required");
  const limit = config.maxStreamedAttachmentBytes;
  if (upload.contentLength > limit) {
    throw new AppError("PAYLOAD_TOO_LARGE", `The attachment is ${upload.contentLength} bytes; the limit is ${limit}`, {
      tier: "content",
      details: { path: "body", size: upload.contentLength, limit },
    });
  }
  const key = storageKey(tenantId, upload.sha256);
  const existing = await bucket.head(key).catch((error: unknown) => {
    throw tierUnavailable("content", error);
  });
  if (existing) {
    await upload.body?.cancel();
    return { sha256: upload.sha256, size: Number(existing.customMetadata?.rawSize ?? existing.size), created: false };
  }
  const [toR2, toDigest] = (upload.body ?? new Blob([]).stream()).tee();
  const digest = new crypto.DigestStream("SHA-256");
  const sized = new FixedLengthStream(upload.contentLength);
  const metadata = objectMetadata({ hash: upload.sha256, storageKey: key, rawSize: upload.contentLength, storedSize: upload.contentLength, algorithm: "raw", dictionaryHash: null });
  const [put, piped, hashed] = await Promise.allSettled([
    bucket.put(key, sized.readable, { sha256: upload.sha256, customMetadata: metadata }),
    toR2.pipeTo(sized.writable),
    toDigest.pipeTo(digest),
  ]);
  if (piped.status === "rejected") throw invalid("body", `length differs from Content-Length ${upload.contentLength}`);
  if (hashed.status === "fulfilled" && hex(await digest.digest) !== upload.sha256) throw invalid("body", "content does not hash to sha256");
  if (put.status === "rejected") throw tierUnavailable("content", put.reason);
  return { sha256: upload.sha256, size: upload.contentLength, created: true };
}

/**
 * An attachment as a streamed response with its MIME type. A raw object streams straight from R2 and
 * is hashed on the way: a mismatch errors the stream at its end (the client sees a failed download,
 * never a clean one) and is reported. Compressed objects are below the compression threshold and are
 * decoded and verified whole first.
 */
export async function streamAttachment(deps: ContentReadDeps, scope: TenantScope, emailId: string, position: number): Promise<Response> {
  const part = await attachmentPart(deps, scope, emailId, position);
  const headers = new Headers({
    "content-type": part.mimeType,
    "content-disposition": `${part.disposition === "inline" ? "inline" : "attachment"}; filename*=UTF-8''${encodeURIComponent(part.filename ?? `attachment-${position}`)}`,
    "cache-control": "private, no-store",
  });
  if (part.algorithm !== "raw" || !part.storageKey) return new Response(await readPart(deps, scope, part), { headers });
  const { storageKey: key, hash } = part;
  const object = await deps.bucket.get(key).catch((error: unknown) => {
    throw tierUnavailable("content", error);
  });
  if (!object) throw new AppError("NOT_FOUND", "This content has expired and was deleted", { tier: "content", details: { position } });
  headers.set("content-length", String(object.size));
  const digest = new crypto.DigestStream("SHA-256");
  const digestWriter = digest.getWriter();
  const verified = object.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        await digestWriter.write(chunk);
        controller.enqueue(chunk);
      },
      async flush(controller) {
        await digestWriter.close();
        const actual = hex(await digest.digest);
        if (actual !== hash) {
          const failure = new IntegrityError(key, hash, actual);
          await deps.reportIntegrityFailure(failure, scope).catch(() => undefined);
          controller.error(failure);
        }
      },
    }),
  );
  return new Response(verified, { headers });
}
