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
  const link = options.batch === false ? httpLink : httpBatchLink;
  return createTRPCClient<AppRouter>({
    links: [
      link({
        url: `${origin}/trpc`,
        fetch: (url, init) => exports.default.fetch(new Request(url, init as RequestInit)),
        headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
      }),
    ],
  });
}
