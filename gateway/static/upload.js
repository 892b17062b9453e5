// Uploads straight to the object store through the gateway's plan: one pre-signed PUT, or a
// multipart upload with a pre-signed URL per part (PUT each part, then confirm: the gateway
// completes it). Parts go a few at a time and each is retried with exponential backoff.

import { api } from "./api.js";
import { bytes, el, exactBytes, sleep } from "./dom.js";

export const RETRY = { attempts: 6, baseMs: 500, maxMs: 8000 };
const PARALLEL_PARTS = 4;
const MIME = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+$/;

export function tooLargeMessage(file, maxSize) {
  if (file.size <= maxSize) return null;
  return `${file.name} is too large: ${exactBytes(file.size)}, over the limit of ${bytes(maxSize)} `
    + `(${exactBytes(maxSize)}). Nothing was uploaded.`;
}

class PutError extends Error {
  constructor(message, retryable) {
    super(message);
    this.retryable = retryable;
  }
}

function putOnce(url, headers, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [name, value] of Object.entries(headers || {})) {
      if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      // 5xx, 408 and 429 may pass next time; 403 (expired or wrong URL) and other 4xx will not.
      const retryable = xhr.status >= 500 || xhr.status === 408 || xhr.status === 429;
      return reject(new PutError(`storage answered ${xhr.status}`, retryable));
    };
    xhr.onerror = () => reject(new PutError("network error", true));
    xhr.ontimeout = () => reject(new PutError("timed out", true));
    xhr.send(blob);
  });
}

export function backoffMs(attempt) {
  const ceiling = Math.min(RETRY.maxMs, RETRY.baseMs * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2); // jitter: parts do not retry in lockstep
}

async function putWithRetry(url, headers, blob, part, view) {
  for (let attempt = 1; ; attempt += 1) {
    view.partState(part, "sending", attempt > 1 ? `attempt ${attempt}` : "sending");
    try {
      await putOnce(url, headers, blob, (loaded) => view.partProgress(part, loaded));
      view.partProgress(part, blob.size);
      view.partState(part, "done", "done");
      return;
    } catch (err) {
      view.partProgress(part, 0);
      if (!err.retryable || attempt >= RETRY.attempts) {
        view.partState(part, "failed", err.message);
        throw new Error(`part ${part + 1}: ${err.message} (after ${attempt} attempt${attempt > 1 ? "s" : ""})`);
      }
      const wait = backoffMs(attempt);
      view.partState(part, "retrying", `${err.message}; retry in ${(wait / 1000).toFixed(1)} s`);
      view.retries += 1;
      await sleep(wait);
    }
  }
}

async function sendParts(file, plan, view) {
  const offsets = [];
  let offset = 0;
  for (const part of plan.parts) {
    offsets.push(offset);
    offset += part.size;
  }
  let next = 0;
  const worker = async () => {
    while (next < plan.parts.length) {
      const index = next;
      next += 1;
      const part = plan.parts[index];
      const blob = file.slice(offsets[index], offsets[index] + part.size);
      await putWithRetry(part.url, {}, blob, index, view);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, plan.parts.length) }, worker));
}

// Request, send, confirm; returns the request-upload ticket (its urls.events streams results).
export async function uploadFile(file, view) {
  const body = { file_name: file.name, file_size: file.size };
  if (MIME.test(file.type)) body.content_type = file.type;
  const { body: ticket } = await api("POST", "/docs/request-upload", body);
  if (!ticket.upload) return ticket; // the same bytes, scanned before
  const plan = ticket.upload;
  const sizes = plan.method === "MULTIPART" ? plan.parts.map((p) => p.size) : [file.size];
  view.start(sizes, plan.method);
  if (plan.method === "MULTIPART") await sendParts(file, plan, view);
  else await putWithRetry(plan.url, plan.headers, file, 0, view);
  view.confirming();
  await api("POST", `/docs/${ticket.id}/confirm-upload`);
  view.finished();
  return ticket;
}

// A total bar and, for a multipart upload, a bar per part.
export class UploadView {
  constructor(file) {
    this.size = file.size;
    this.loaded = [];
    this.retries = 0;
    this.started = performance.now();
    this.bar = el("progress", { class: "total", max: Math.max(file.size, 1), value: 0, "aria-label": "uploaded in total" });
    this.text = el("div", { class: "upload-text" }, "Requesting an upload URL…");
    this.parts = el("ol", { class: "parts", "aria-label": "parts" });
    this.node = el("div", { class: "upload" }, this.bar, this.text, this.parts);
  }

  start(sizes, method) {
    this.loaded = sizes.map(() => 0);
    this.sizes = sizes;
    this.method = method;
    this.node.dataset.method = method;
    this.rows = sizes.map((size, i) => {
      const bar = el("progress", { max: Math.max(size, 1), value: 0, "aria-label": `part ${i + 1}` });
      const note = el("span", { class: "part-note" }, "waiting");
      const row = el("li", { class: "part part-waiting", dataset: { part: String(i + 1) } },
        el("span", { class: "part-name" }, `Part ${i + 1}`), bar, note);
      row.bar = bar;
      row.note = note;
      return row;
    });
    if (method === "MULTIPART") this.parts.replaceChildren(...this.rows);
    this.update();
  }

  partProgress(index, loaded) {
    this.loaded[index] = loaded;
    this.rows[index].bar.value = loaded;
    this.update();
  }

  partState(index, state, note) {
    const row = this.rows[index];
    row.className = `part part-${state}`;
    row.note.textContent = note;
  }

  update() {
    const sent = this.loaded.reduce((a, b) => a + b, 0);
    const seconds = Math.max((performance.now() - this.started) / 1000, 0.001);
    this.bar.value = sent;
    const parts = this.method === "MULTIPART"
      ? ` · ${this.rows.filter((r) => r.classList.contains("part-done")).length} of ${this.rows.length} parts` : "";
    const retried = this.retries ? ` · ${this.retries} retr${this.retries === 1 ? "y" : "ies"}` : "";
    this.text.textContent = `Uploading ${bytes(sent)} of ${bytes(this.size)} · ${bytes(sent / seconds)}/s${parts}${retried}`;
  }

  confirming() {
    this.text.textContent = "Uploaded; confirming…";
  }

  finished() {
    const seconds = (performance.now() - this.started) / 1000;
    const retried = this.retries ? `, ${this.retries} retr${this.retries === 1 ? "y" : "ies"}` : "";
    this.text.textContent = `Uploaded ${bytes(this.size)} in ${seconds.toFixed(1)} s${retried}`;
    this.node.classList.add("upload-done");
  }

  failed(message) {
    this.text.textContent = `Upload failed: ${message}`;
    this.node.classList.add("upload-failed");
  }
}
