// `npm run dev`'s configuration: the email provider and other integrations from the environment or `.dev.vars`,
// and without a provider, sends a developer can read at the local stand-in.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envSchema } from "../../src/platform/env";
import { readDevVarsFile, resolveDevVars } from "../../scripts/dev-vars";
import { type ProviderStandins, startProviderStandins } from "../../scripts/stack/provider-standins";

const stackVars = { ENVIRONMENT: "development", CORS_ORIGINS: "*", JWT_SECRET: "stack-secret", OLTP_DATABASE_URL: "postgres://stack/oltp" };
const schemaNames = Object.keys(envSchema.shape);

describe("npm run dev: the Worker's variables", () => {
  it("without a provider, sends go to the local stand-in", () => {
    const resolved = resolveDevVars({ stackVars, schemaNames, standinEmailUrl: "http://127.0.0.1:9/email", fileVars: {}, environment: {} });
    expect(resolved.vars.EMAIL_PROVIDER_URL).toBe("http://127.0.0.1:9/email");
    expect(resolved.emailToStandin).toBe(true);
  });

  it("takes the provider and other integrations from .dev.vars, the environment winning; never the stack's own variables or unrelated ones", () => {
    const root = mkdtempSync(path.join(tmpdir(), "edp-dev-vars-"));
    writeFileSync(
      path.join(root, ".dev.vars"),
      [
        "# my provider",
        "EMAIL_PROVIDER_URL=https://api.provider.example/emails",
        'EMAIL_PROVIDER_API_KEY="re_file_key"',
        "NOTIFICATION_EMAIL_FROM=dev@example.com",
        "JWT_SECRET=not-the-stacks",
        "HOME=/elsewhere",
      ].join("\n"),
    );
    const fileVars = readDevVarsFile(root);
    expect(fileVars.EMAIL_PROVIDER_API_KEY).toBe("re_file_key");
    const resolved = resolveDevVars({
      stackVars,
      schemaNames,
      standinEmailUrl: "http://127.0.0.1:9/email",
      fileVars,
      environment: { EMAIL_PROVIDER_API_KEY: "re_env_key", OLTP_DATABASE_URL: "postgres://mine", PATH: "/usr/bin" },
    });
    expect(resolved.vars).toMatchObject({
      EMAIL_PROVIDER_URL: "https://api.provider.example/emails",
      EMAIL_PROVIDER_API_KEY: "re_env_key",
      NOTIFICATION_EMAIL_FROM: "dev@example.com",
      JWT_SECRET: "stack-secret",
      OLTP_DATABASE_URL: "postgres://stack/oltp",
    });
    expect(resolved.vars).not.toHaveProperty("HOME");
    expect(resolved.vars).not.toHaveProperty("PATH");
    expect(resolved.emailToStandin).toBe(false);
    expect(resolved.fromFile.sort()).toEqual(["EMAIL_PROVIDER_API_KEY", "EMAIL_PROVIDER_URL", "NOTIFICATION_EMAIL_FROM"]);
    expect(resolved.fromEnvironment).toEqual(["EMAIL_PROVIDER_API_KEY"]);
    expect(readDevVarsFile(mkdtempSync(path.join(tmpdir(), "edp-dev-vars-")))).toEqual({});
  });
});

describe("the email stand-in's listing", () => {
  let standins: ProviderStandins;
  beforeAll(async () => {
    standins = await startProviderStandins();
  });
  afterAll(() => standins.close());

  it("shows a developer what would have been sent, newest first, HTML escaped, with attachments named", async () => {
    const post = (subject: string, extra: Record<string, unknown> = {}) =>
      fetch(standins.emailUrl, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
        body: JSON.stringify({ from: "sales@demo.example", to: ["lead@example.org"], subject, text: "Hello <b>there</b>", ...extra }),
      });
    expect((await post("First")).status).toBe(200);
    expect((await post("<script>alert(1)</script>", { attachments: [{ filename: "deck.pdf", contentType: "application/pdf", disposition: "attachment", content: "JVBERg==" }] })).status).toBe(200);
    const page = await fetch(`${standins.controlUrl}/_local/email`);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).not.toContain("<script>");
    expect(html).toContain("Hello &lt;b&gt;there&lt;/b&gt;");
    expect(html).toContain("deck.pdf");
    expect(html.indexOf("&lt;script&gt;")).toBeLessThan(html.indexOf("First"));
  });
});
