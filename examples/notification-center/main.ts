// A tiny notification center: the unread badge, the latest 20 notifications, "mark all read".
// Type-checked in CI under strict, lib DOM + ES2022, no Worker types (examples/notification-center/tsconfig.json).
import { createClient, isClientError, type RouterOutputs } from "edge-data-platform/client";

type Notification = RouterOutputs["notifications"]["list"]["items"][number];

const params = new URLSearchParams(location.search);
const client = createClient({
  url: params.get("url") ?? "http://127.0.0.1:8787",
  token: () => params.get("token") ?? localStorage.getItem("edp-token") ?? undefined,
});

const badge = document.querySelector<HTMLSpanElement>("#badge")!;
const list = document.querySelector<HTMLUListElement>("#list")!;
const status = document.querySelector<HTMLParagraphElement>("#status")!;

function render(items: Notification[], unread: number): void {
  badge.textContent = String(unread);
  list.replaceChildren(
    ...items.map((item) => {
      const li = document.createElement("li");
      li.className = item.isRead ? "" : "unread";
      li.textContent = `${new Date(item.createdAt).toLocaleString()}: ${item.title}: ${item.message}`;
      return li;
    }),
  );
}

async function refresh(): Promise<void> {
  try {
    // One round trip: the page and the caller's unread count come from the same transaction.
    const page = await client.notifications.list.query({ limit: 20 });
    render(page.items, page.unread);
    status.textContent = "";
  } catch (error) {
    if (isClientError(error, "AUTH_TOKEN_EXPIRED")) status.textContent = "Your session expired: sign in again.";
    else if (isClientError(error)) status.textContent = `${error.data?.code ?? "ERROR"}: ${error.message} (request ${error.data?.requestId})`;
    else throw error;
  }
}

document.querySelector<HTMLButtonElement>("#mark-all")!.addEventListener("click", async () => {
  await client.notifications.markAllRead.mutate();
  await refresh();
});

await refresh();
setInterval(() => void refresh(), 30_000);
