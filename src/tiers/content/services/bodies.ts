// The stored form of an email body: headers, text and HTML in one object, framed so a template's bytes appear verbatim.
export interface EmailBody {
  text: string;
  html: string;
  headers: Record<string, string>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * One JSON line (headers and the text's length) then the text and the HTML as they are. Not JSON
 * throughout: escaping would rewrite every quote and newline of the HTML and hide its repetition
 * from the compressor.
 */
export function serializeBody(body: EmailBody): Uint8Array {
  return encoder.encode(`${JSON.stringify({ headers: body.headers, textLength: body.text.length })}\n${body.text}${body.html}`);
}

export function parseBody(bytes: Uint8Array): EmailBody {
  const whole = decoder.decode(bytes);
  const newline = whole.indexOf("\n");
  const frame = JSON.parse(whole.slice(0, newline)) as { headers: Record<string, string>; textLength: number };
  const rest = whole.slice(newline + 1);
  return { headers: frame.headers, text: rest.slice(0, frame.textLength), html: rest.slice(frame.textLength) };
}

/** What search indexes: the text part, or the HTML's visible words when there is no text part. */
export function plainText(body: EmailBody): string {
  if (body.text.trim()) return body.text;
  return body.html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]+>/g, " ")
    .replace(/&nbsp;/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    // Last, so "&amp;lt;" (a sender's escaped "&lt;") becomes the text "&lt;", not "<".
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
}
