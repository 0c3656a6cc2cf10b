// Per-object compression: try brotli, gzip, deflate against a template dictionary and storing raw, keep whichever is smallest, and decode by the recorded algorithm.
import { brotliCompressSync, brotliDecompressSync, constants, deflateSync, gunzipSync, gzipSync, inflateSync } from "node:zlib";
import type { compressionAlgorithms } from "./schema";

export type CompressionAlgorithm = (typeof compressionAlgorithms)[number];

export interface Encoded {
  algorithm: CompressionAlgorithm;
  bytes: Uint8Array;
}

/**
 * Brotli at quality 9 with a window sized to the object: close to quality 11 on mail-sized text at a
 * fraction of the CPU. Above `exhaustiveBytes` only gzip is tried, so a large attachment costs one pass.
 *
 * With a `dictionary` (the template a campaign render was made from) deflate also runs against it
 * (`deflateAgainst`), so the render's unchanged stretches become back-references into the template and
 * it costs about its differences. Deflate only: brotli in `node:zlib` accepts a `dictionary` option and
 * silently ignores it (see content-dictionary.test.ts).
 */
export function encodeBest(raw: Uint8Array, exhaustiveBytes: number, dictionary?: Uint8Array): Encoded {
  const candidates: Encoded[] = [{ algorithm: "raw", bytes: raw }];
  if (dictionary && raw.byteLength <= exhaustiveBytes) {
    const delta: Encoded = { algorithm: "deflate-dict", bytes: deflateAgainst(raw, dictionary) };
    // A render that shrank to a tenth is mostly template: brotli alone does not reach that on HTML, and
    // skipping it keeps a campaign write's CPU to one deflate pass.
    if (delta.bytes.byteLength * 10 <= raw.byteLength) return delta;
    candidates.push(delta);
  }
  candidates.push({ algorithm: "gzip", bytes: gzipSync(raw, { level: 9 }) });
  if (raw.byteLength <= exhaustiveBytes) {
    const brotli = brotliCompressSync(raw, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 9,
        [constants.BROTLI_PARAM_SIZE_HINT]: raw.byteLength,
        [constants.BROTLI_PARAM_LGWIN]: 22,
      },
    });
    candidates.push({ algorithm: "br", bytes: brotli });
  }
  // Ties go to the earlier candidate: raw first, the cheapest to read.
  return candidates.reduce((best, c) => (c.bytes.byteLength < best.bytes.byteLength ? c : best));
}

const deflateWindow = 32 * 1024;
const segmentBytes = 16 * 1024;
const headerBytes = (segments: number) => 4 + segments * 12;

/**
 * The `deflate-dict` form. Deflate reaches back only 32 KiB, and a render sits a whole template's length
 * after its match in a preset dictionary, so a template over 32 KiB would be out of reach. The render is
 * therefore cut into 16 KiB segments, each deflated (zlib framing, level 9) with its own preset
 * dictionary: the 32 KiB of template around where the segment falls in proportion, which tolerates 8 KiB
 * of drift from substitutions either way. Layout: segment count, then per segment the slice's offset and
 * length in the template and the stream's length (big-endian u32s), then the streams. Each zlib header
 * carries its slice's Adler-32, so decoding with the wrong template fails instead of producing other bytes.
 */
export function deflateAgainst(raw: Uint8Array, dictionary: Uint8Array): Uint8Array {
  const segments = Math.max(1, Math.ceil(raw.byteLength / segmentBytes));
  const scale = raw.byteLength > 0 ? dictionary.byteLength / raw.byteLength : 0;
  const header = new DataView(new ArrayBuffer(headerBytes(segments)));
  header.setUint32(0, segments);
  const streams: Uint8Array[] = [];
  for (let k = 0; k < segments; k++) {
    const start = k * segmentBytes;
    const centred = Math.round(start * scale) - (deflateWindow - segmentBytes) / 2;
    const from = Math.max(0, Math.min(centred, dictionary.byteLength - deflateWindow));
    const slice = dictionary.subarray(from, from + deflateWindow);
    const stream = deflateSync(raw.subarray(start, start + segmentBytes), { level: 9, dictionary: slice });
    header.setUint32(4 + k * 12, from);
    header.setUint32(8 + k * 12, slice.byteLength);
    header.setUint32(12 + k * 12, stream.byteLength);
    streams.push(stream);
  }
  const out = new Uint8Array(header.byteLength + streams.reduce((n, stream) => n + stream.byteLength, 0));
  out.set(new Uint8Array(header.buffer), 0);
  let at = header.byteLength;
  for (const stream of streams) {
    out.set(stream, at);
    at += stream.byteLength;
  }
  return out;
}

function inflateAgainst(stored: Uint8Array, dictionary: Uint8Array): Uint8Array {
  const view = new DataView(stored.buffer, stored.byteOffset, stored.byteLength);
  const segments = view.getUint32(0);
  if (headerBytes(segments) > stored.byteLength) throw new Error("deflate-dict header runs past the object");
  const parts: Uint8Array[] = [];
  let at = headerBytes(segments);
  for (let k = 0; k < segments; k++) {
    const from = view.getUint32(4 + k * 12);
    const length = view.getUint32(8 + k * 12);
    const streamLength = view.getUint32(12 + k * 12);
    if (from + length > dictionary.byteLength || at + streamLength > stored.byteLength) throw new Error("deflate-dict segment out of bounds");
    parts.push(inflateSync(stored.subarray(at, at + streamLength), { dictionary: dictionary.subarray(from, from + length) }));
    at += streamLength;
  }
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** `dictionary` is required for `deflate-dict` and ignored otherwise. */
export function decode(algorithm: string, stored: Uint8Array, dictionary?: Uint8Array): Uint8Array {
  switch (algorithm) {
    case "raw":
      return stored;
    case "gzip":
      return gunzipSync(stored);
    case "br":
      return brotliDecompressSync(stored);
    case "deflate-dict":
      if (!dictionary) throw new Error("deflate-dict needs its dictionary");
      return inflateAgainst(stored, dictionary);
    default:
      throw new Error(`unknown compression algorithm ${algorithm}`);
  }
}
