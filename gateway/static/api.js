// The gateway's API with the key kept for this browser tab (sessionStorage, never localStorage).

import { sleep } from "./dom.js";

const KEY = "intellidox.apiKey";

export const keyStore = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function retryAfterMs(res, attempt) {
  const header = Number(res.headers.get("Retry-After"));
  const seconds = Number.isFinite(header) && header > 0 ? header : 2 ** attempt;
  return Math.min(seconds, 30) * 1000;
}

// A call with the key. 429 is retried after Retry-After (nothing was done); 503 too, but only
// for reads (a write may have happened before the store went away). 401 forgets the key.
export async function api(method, path, body) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = { Authorization: `Bearer ${keyStore.get() || ""}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const again = res.status === 429 || (res.status === 503 && method === "GET");
    if (again && attempt < 4) {
      await sleep(retryAfterMs(res, attempt));
      continue;
    }
    const data = await res.json().catch(() => ({}));
    if (res.status === 401) {
      keyStore.clear();
      window.dispatchEvent(new CustomEvent("intellidox:key-rejected", { detail: data.error }));
    }
    if (!res.ok) throw new ApiError(res.status, data.error || `HTTP ${res.status}`);
    return { status: res.status, body: data };
  }
}

// The page is served by the gateway, so its own origin reaches the API: URLs the API returns
// are used by path (behind a proxy the public URL may be another name for the same thing).
export function samePath(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.pathname + parsed.search;
}

export async function pageConfig() {
  const res = await fetch("/ui/config");
  return res.ok ? res.json() : { dev_mode: false, dev_api_key: null, max_file_size: 2 ** 30 };
}
