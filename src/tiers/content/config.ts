// The content tier's tunables in one place: size limits, allowed attachment types, retention and search bounds.

export interface ContentConfig {
  /** Serialized body (text + HTML + headers) above this is refused with PAYLOAD_TOO_LARGE. */
  maxBodyBytes: number;
  maxAttachmentBytes: number;
  /** A file streamed to PUT /v1/content/attachments/:sha256 above this is refused before a byte is read. */
  maxStreamedAttachmentBytes: number;
  maxAttachments: number;
  /** Attachment MIME types accepted; anything else is VALIDATION_FAILED. */
  allowedAttachmentTypes: readonly string[];
  /** Objects below this are tried with every algorithm; above it only gzip, which is cheaper to compute. */
  exhaustiveCompressionBytes: number;
  /** Characters of plain text kept beside the search vector for highlighting. */
  snippetChars: number;
  /**
   * Characters of plain text the search vector is built from: a body's first 100,000 (at most 400 KB of UTF-8),
   * which keeps every vector well under Postgres' 1 MB tsvector limit, so any accepted body can be indexed.
   */
  searchIndexChars: number;
}

export const contentConfig: ContentConfig = {
  maxBodyBytes: 1024 * 1024,
  maxAttachmentBytes: 5 * 1024 * 1024,
  maxStreamedAttachmentBytes: 25 * 1024 * 1024,
  maxAttachments: 10,
  allowedAttachmentTypes: [
    "application/pdf",
    "application/zip",
    "application/octet-stream",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/plain",
    "text/csv",
    "text/calendar",
    "text/html",
    "message/rfc822",
  ],
  exhaustiveCompressionBytes: 2 * 1024 * 1024,
  snippetChars: 2000,
  searchIndexChars: 100_000,
};

/** Catalog rows per pruning run, and how long a tombstoned blob waits before it leaves R2 (see PruneOptions). */
export const contentPruning = { batchSize: 1000, graceSeconds: 3600 };
/** An email not indexed this long after its write lost its INDEX_CONTENT job. */
export const indexingGraceMinutes = 15;
