// Local stand-ins for the services notifications leave the platform through: a transactional email API (the shape
// HttpEmailProvider POSTs) and webhook receivers that verify Standard Webhooks signatures with the reference library.
// Each records what it received; tests read and steer them through /_local routes. Beside them runs a Web Push
// service (the `web-push-testing` package): it hands out subscriptions, checks each push's VAPID signature and
// decrypts its RFC 8291 payload, and answers 410 for a subscription a test expired.
import http from "node:http";
import { createRequire } from "node:module";
import net from "node:net";
import { Webhook } from "standardwebhooks";
import { listen, readBody } from "./net-util";

type EmailMode = "ok" | "fail" | "reject" | "refuse";
type ReceiverMode = "ok" | "fail";

interface ReceivedEmail {
  idempotencyKey: string | null;
  authorization: string | null;
  from: string;
  to: string[];
  subject: string;
  text: string;
  html?: string;
  headers?: Record<string, string>;
  attachments?: Array<{ filename: string; contentType: string; disposition: string; content: string }>;
  receivedAt: string;
}

interface ReceivedWebhook {
  id: string | null;
  timestamp: string | null;
  signature: string | null;
  verified: boolean;
  error?: string;
  body: unknown;
  receivedAt: string;
}

export interface ProviderStandins {
  port: number;
  /** EMAIL_PROVIDER_URL for the Worker. */
  emailUrl: string;
  /** Base of the receivers: `${webhookBase}/{name}` is one receiver. */
  webhookBase: string;
  controlUrl: string;
  /**
   * The local push service (web-push-testing): POST /subscribe {applicationServerKey} → a subscription with its
   * clientHash; POST /get-notifications {clientHash} → the decrypted messages; POST /expire-subscription/{clientHash}.
   */
  pushServiceUrl: string;
  close(): Promise<void>;
}

const htmlEntities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => htmlEntities[c]!);

/** What `npm run dev` would have sent, newest first, for a developer's browser (everything escaped). */
function emailListing(emails: ReceivedEmail[]): string {
  const rows = [...emails]
    .reverse()
    .map(
      (e) => `<tr><td>${escapeHtml(e.receivedAt)}</td><td>${escapeHtml(e.from)}</td><td>${escapeHtml(e.to.join(", "))}</td>
<td><b>${escapeHtml(e.subject)}</b><pre>${escapeHtml(e.text ?? "")}</pre>${
        e.attachments?.length ? `<div>Attachments: ${e.attachments.map((a) => escapeHtml(`${a.filename} (${a.contentType})`)).join(", ")}</div>` : ""
      }${e.headers && Object.keys(e.headers).length ? `<div>Headers: ${escapeHtml(Object.entries(e.headers).map(([k, v]) => `${k}: ${v}`).join("; "))}</div>` : ""}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html><meta charset="utf-8"><title>Emails sent (local stand-in)</title>
<h1>Emails the Worker sent to the local provider stand-in</h1>
<p>${emails.length} email(s); JSON: <a href="/_local/email/sent">/_local/email/sent</a> (<code>?to=address</code> filters). Nothing leaves this machine.</p>
<table border="1" cellpadding="4"><tr><th>received</th><th>from</th><th>to</th><th>message</th></tr>
${rows}
</table>`;
}

interface WebPushTestingServer {
  startServer(): void;
  _server?: http.Server;
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  const port = await listen(probe, "127.0.0.1", 0);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * web-push-testing's own server class in this process (its CLI would daemonize it). It names its subscriptions'
 * endpoints `http://localhost:{port}/notify/…` and listens on every interface, so it needs its port up front.
 */
async function startPushService(): Promise<{ url: string; close(): Promise<void> }> {
  const require = createRequire(import.meta.url);
  const { PushApiModel } = require("web-push-testing/src/PushApiModel.js") as { PushApiModel: new () => unknown };
  const Server = require("web-push-testing/src/server.js") as new (model: unknown, port: number) => WebPushTestingServer;
  const port = await freePort();
  const server = new Server(new PushApiModel(), port);
  // Its "Server running on port" line (logged from the listen callback) would mix into the stack's own output.
  const log = console.log;
  console.log = () => undefined;
  try {
    server.startServer();
    await new Promise<void>((resolve, reject) => {
      server._server!.once("listening", resolve);
      server._server!.once("error", reject);
    });
  } finally {
    console.log = log;
  }
  return { url: `http://localhost:${port}`, close: () => new Promise((resolve) => server._server!.close(() => resolve())) };
}

const send = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

export async function startProviderStandins(options: { port?: number; host?: string } = {}): Promise<ProviderStandins> {
  const host = options.host ?? "127.0.0.1";
  const emails: ReceivedEmail[] = [];
  /** Failure modes by recipient address, so concurrent tests steer only their own recipients. */
  const emailModes = new Map<string, EmailMode>();
  const receivers = new Map<string, { secret: string | null; mode: ReceiverMode; received: ReceivedWebhook[] }>();
  const receiver = (name: string) => {
    const known = receivers.get(name);
    if (known) return known;
    const created = { secret: null as string | null, mode: "ok" as ReceiverMode, received: [] as ReceivedWebhook[] };
    receivers.set(name, created);
    return created;
  };

  /** Key sets an identity provider would publish, by name: `GET /jwks/{name}`, set by `POST /_local/jwks/{name}`. */
  const keySets = new Map<string, unknown[]>();

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", `http://${host}`);
      const body = await readBody(req);
      const parts = url.pathname.split("/").filter(Boolean);

      if (req.method === "POST" && url.pathname === "/email") {
        const email = JSON.parse(body) as Omit<ReceivedEmail, "idempotencyKey" | "authorization" | "receivedAt">;
        const key = req.headers["idempotency-key"];
        const mode = email.to.map((to) => emailModes.get(to.toLowerCase())).find((m) => m && m !== "ok") ?? "ok";
        // A provider decodes attachments: content that is not base64 is refused as a real API would.
        for (const attachment of email.attachments ?? []) {
          if (!/^[A-Za-z0-9+/]*={0,2}$/.test(attachment.content) || Buffer.from(attachment.content, "base64").toString("base64") !== attachment.content) {
            return send(res, 400, { error: `attachment ${attachment.filename} is not base64` });
          }
        }
        if (mode === "fail") return send(res, 503, { error: "stand-in provider failure (injected)" });
        if (mode === "reject") return send(res, 422, { error: "recipient rejected (injected)" });
        if (mode === "refuse") return send(res, 400, { error: "request refused (injected)" });
        emails.push({
          ...email,
          idempotencyKey: typeof key === "string" ? key : null,
          authorization: req.headers.authorization ?? null,
          receivedAt: new Date().toISOString(),
        });
        return send(res, 200, { id: `recorded-${typeof key === "string" ? key : crypto.randomUUID()}` });
      }

      if (req.method === "POST" && parts[0] === "webhooks" && parts[1]) {
        const r = receiver(parts[1]);
        const headers = {
          "webhook-id": String(req.headers["webhook-id"] ?? ""),
          "webhook-timestamp": String(req.headers["webhook-timestamp"] ?? ""),
          "webhook-signature": String(req.headers["webhook-signature"] ?? ""),
        };
        let verified = false;
        let error: string | undefined;
        try {
          if (!r.secret) throw new Error("no secret registered");
          new Webhook(r.secret).verify(body, headers);
          verified = true;
        } catch (e) {
          error = e instanceof Error ? e.message : String(e);
        }
        let parsed: unknown = body;
        try {
          parsed = JSON.parse(body);
        } catch {}
        r.received.push({
          id: headers["webhook-id"] || null,
          timestamp: headers["webhook-timestamp"] || null,
          signature: headers["webhook-signature"] || null,
          verified,
          ...(error ? { error } : {}),
          body: parsed,
          receivedAt: new Date().toISOString(),
        });
        if (!verified) return send(res, 401, { error });
        if (r.mode === "fail") return send(res, 500, { error: "receiver failure (injected)" });
        return send(res, 204, null);
      }

      if (req.method === "GET" && parts[0] === "jwks" && parts[1] && parts.length === 2) {
        return send(res, 200, { keys: keySets.get(parts[1]) ?? [] });
      }

      // Control: /_local/jwks/{name} (POST {keys}); /_local/email (HTML listing); /_local/email/mode {to, mode}; /_local/email/sent?to=; /_local/webhooks/{name} (GET received, POST {secret?, mode?}).
      if (parts[0] === "_local") {
        if (parts[1] === "email" && parts.length === 2 && req.method === "GET") {
          res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
          return res.end(emailListing(emails));
        }
        if (parts[1] === "email" && parts[2] === "mode" && req.method === "POST") {
          const { to, mode } = JSON.parse(body) as { to: string; mode: EmailMode };
          emailModes.set(to.toLowerCase(), mode);
          return send(res, 200, { ok: true });
        }
        if (parts[1] === "email" && parts[2] === "sent") {
          const to = url.searchParams.get("to")?.toLowerCase();
          return send(res, 200, emails.filter((e) => !to || e.to.some((t) => t.toLowerCase() === to)));
        }
        if (parts[1] === "jwks" && parts[2] && req.method === "POST") {
          keySets.set(parts[2], (JSON.parse(body) as { keys: unknown[] }).keys);
          return send(res, 200, { ok: true });
        }
        if (parts[1] === "webhooks" && parts[2]) {
          const r = receiver(parts[2]);
          if (req.method === "POST") {
            const change = JSON.parse(body) as { secret?: string; mode?: ReceiverMode };
            if (change.secret !== undefined) r.secret = change.secret;
            if (change.mode !== undefined) r.mode = change.mode;
            return send(res, 200, { ok: true });
          }
          return send(res, 200, r.received);
        }
      }
      send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    } catch (error) {
      send(res, 400, { error: error instanceof Error ? error.message : String(error) });
    }
  });
  const port = await listen(server, host, options.port ?? 0);
  const base = `http://${host}:${port}`;
  const push = await startPushService();
  return {
    port,
    emailUrl: `${base}/email`,
    webhookBase: `${base}/webhooks`,
    controlUrl: base,
    pushServiceUrl: push.url,
    close: async () => {
      await push.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
