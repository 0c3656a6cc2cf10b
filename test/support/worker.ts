// Talks to the Worker under test the way users do: HTTP requests and a real tRPC client.
import { createTRPCClient, httpBatchLink, httpLink } from "@trpc/client";
import { exports } from "cloudflare:workers";
import type { AppRouter } from "../../src/index";

export const origin = "https://edp.test";

/** An HTTP request through the Worker's own fetch handler (Miniflare), as a browser or curl would send it. */
export function request(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(new URL(path, origin), init));
}

export function trpcClient(token?: string, options: { batch?: boolean } = {}) {
  const options_ = {
    url: `${origin}/trpc`,
    fetch: (url: URL | RequestInfo, init?: RequestInit | { body?: unknown }) => exports.default.fetch(new Request(url, init as RequestInit)),
    headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
  };
  // The Worker refuses batches above TRPC_MAX_BATCH (10 by default); the client splits larger ones, as a real client should.
  return createTRPCClient<AppRouter>({ links: [options.batch === false ? httpLink(options_) : httpBatchLink({ ...options_, maxItems: 10 })] });
}
