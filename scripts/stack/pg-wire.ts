// Postgres v3 wire-protocol framing shared by the PGlite TCP server and the Neon endpoint's WebSocket proxy.

export const PROTOCOL_V3 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;

export interface Startup {
  code: number;
  params: Record<string, string>;
}

export interface Message {
  type: string;
  /** the whole message, type byte and length included, ready to forward */
  raw: Buffer;
  body: Buffer;
}

/** Accumulates a byte stream and cuts it into whole messages; a partial message waits for the rest. */
export class MessageReader {
  private buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
  }

  /** The startup phase has no type byte: an int32 length (itself included), then the payload. */
  takeUntyped(): Buffer | undefined {
    if (this.buffer.length < 4) return undefined;
    const length = this.buffer.readInt32BE(0);
    if (length < 8) throw new Error(`invalid startup packet length ${length}`);
    if (this.buffer.length < length) return undefined;
    const message = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return message;
  }

  takeMessages(): Message[] {
    const messages: Message[] = [];
    let offset = 0;
    while (this.buffer.length - offset >= 5) {
      const length = this.buffer.readInt32BE(offset + 1);
      if (length < 4) throw new Error(`invalid message length ${length}`);
      if (this.buffer.length - offset < 1 + length) break;
      const raw = this.buffer.subarray(offset, offset + 1 + length);
      messages.push({ type: String.fromCharCode(raw[0]!), raw, body: raw.subarray(5) });
      offset += 1 + length;
    }
    this.buffer = this.buffer.subarray(offset);
    return messages;
  }

  /** Whatever has not been cut into messages yet (forwarded as-is once framing no longer matters). */
  drain(): Buffer {
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }
}

/** Splits a complete backend output buffer (e.g. one PGlite reply) into its messages. */
export function messagesOf(output: Uint8Array): Message[] {
  const reader = new MessageReader();
  reader.push(Buffer.from(output));
  return reader.takeMessages();
}

export function parseStartup(packet: Buffer): Startup {
  const code = packet.readInt32BE(4);
  const params: Record<string, string> = {};
  if (code === PROTOCOL_V3) {
    const fields = packet.subarray(8).toString("utf8").split("\0");
    for (let i = 0; i + 1 < fields.length && fields[i] !== ""; i += 2) params[fields[i]!] = fields[i + 1]!;
  }
  return { code, params };
}

export function encodeStartup(params: Record<string, string>): Buffer {
  const body = Buffer.from(Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join("") + "\0");
  const header = Buffer.alloc(8);
  header.writeInt32BE(8 + body.length, 0);
  header.writeInt32BE(PROTOCOL_V3, 4);
  return Buffer.concat([header, body]);
}

export function encodeMessage(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, "latin1");
  header.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}

export function queryMessage(sql: string): Buffer {
  return encodeMessage("Q", Buffer.from(`${sql}\0`));
}

export const SYNC_MESSAGE = encodeMessage("S", Buffer.alloc(0));

export function errorResponse(severity: "ERROR" | "FATAL", code: string, message: string): Buffer {
  const fields = `S${severity}\0V${severity}\0C${code}\0M${message}\0\0`;
  return encodeMessage("E", Buffer.from(fields));
}

/** ErrorResponse / NoticeResponse body → field code letter → value. */
export function parseErrorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const field of body.toString("utf8").split("\0")) {
    if (field.length > 0) fields[field[0]!] = field.slice(1);
  }
  return fields;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
