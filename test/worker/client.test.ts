// The published client entry (src/client): batching within maxItems, the token, typed error codes.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createClient, isClientError, trpcUrl } from "../../src/client/index";
import { createTenant } from "../support/factories";
import { origin } from "../support/worker";

/** createClient over the Worker's own fetch, counting HTTP requests and the calls each carries. */
function countingClient(token: string | undefined, maxItems?: number) {
  const requests: number[] = [];
  const client = createClient({
    url: origin,
    token,
    ...(maxItems === undefined ? {} : { maxItems }),
    fetch: async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      requests.push(url.pathname.slice("/trpc/".length).split(",").length);
      return exports.default.fetch(new Request(url, init as RequestInit));
    },
  });
  return { client, requests };
}

describe("createClient", () => {
  it("batches calls of one tick into requests of at most maxItems (default 10)", async () => {
    const tenant = await createTenant();
    const { client, requests } = countingClient(tenant.member.token);
    const results = await Promise.all(Array.from({ length: 12 }, () => client.users.me.query()));
    expect(results.every((me) => me.id === tenant.member.id)).toBe(true);
    expect(requests).toEqual([10, 2]);

    const unbatched = countingClient(tenant.member.token, 1);
    await Promise.all([unbatched.client.users.me.query(), unbatched.client.tenants.current.query()]);
    expect(unbatched.requests).toEqual([1, 1]);
  });

  it("rejects with a typed error: error.data.code is the stable machine code", async () => {
    const tenant = await createTenant();
    const { client } = countingClient(tenant.member.token);
    const error = await client.campaigns.get.query({ id: crypto.randomUUID() }).catch((e: unknown) => e);
    expect(isClientError(error, "NOT_FOUND")).toBe(true);
    expect(isClientError(error, "FORBIDDEN")).toBe(false);
    if (!isClientError(error)) throw error;
    const code: "NOT_FOUND" | string | undefined = error.data?.code;
    expect(code).toBe("NOT_FOUND");
    expect(error.data?.httpStatus).toBe(404);

    const anonymous = countingClient(undefined).client;
    const missing = await anonymous.users.me.query().catch((e: unknown) => e);
    expect(isClientError(missing, "AUTH_TOKEN_MISSING")).toBe(true);
  });

  it("reaches procedures at every depth (admin.systemEvents.list) with typed input and output", async () => {
    const tenant = await createTenant();
    const { client } = countingClient(tenant.admin.token);
    const page: { items: Array<{ id: string }>; nextCursor: string | null } = await client.admin.systemEvents.list.query({ limit: 5 });
    expect(Array.isArray(page.items)).toBe(true);
  });

  it("takes a base URL or the /trpc endpoint", () => {
    expect(trpcUrl("http://127.0.0.1:8787")).toBe("http://127.0.0.1:8787/trpc");
    expect(trpcUrl("https://api.example/trpc/")).toBe("https://api.example/trpc");
  });
});
