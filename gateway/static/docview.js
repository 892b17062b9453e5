// One document's live view: verdict header, metadata, every engine's verdict (flagged first).
// It follows the document's event stream; the browser resumes a dropped stream by itself
// (Last-Event-ID), and a refused one (expired token) reopens with a fresh URL from meta.

import { api, samePath } from "./api.js";
import {
  STATUSES, TERMINAL, VERDICTS, badge, bytes, el, exactBytes, overall, ratioText, timeCell, verdictBadge,
} from "./dom.js";

const RANK = { requested: 0, uploaded: 1, in_progress: 2, done: 3, failed: 3, rejected: 3 };
const DOC_FIELDS = ["id", "file_name", "file_size", "file_type", "content_type", "sha256", "created_at",
  "uploaded_at", "updated_at", "meta", "script_version"];

const SHOWN_ABOVE = new Set(["mime_type", "file_type"]);

function duration(v) {
  if (!v.start_at || !v.end_at) return "–";
  const ms = new Date(v.end_at) - new Date(v.start_at);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function copyButton(text) {
  const button = el("button", { type: "button", class: "copy", "aria-label": "Copy SHA-256" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      window.getSelection().selectAllChildren(button.previousSibling);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
  return button;
}

export class DocumentView {
  constructor(fileName, { standalone = false } = {}) {
    this.doc = { file_name: fileName, meta: {} };
    this.status = null;
    this.reason = null;
    this.expected = null;
    this.verdicts = new Map();
    this.finished = false;
    this.standalone = standalone;
    this.stream = null;
    this.live = "";
    this.header = el("div", { class: "verdict-header", "aria-live": "polite" });
    this.title = el("h2", { class: "doc-name" });
    this.uploadSlot = el("div", { class: "upload-slot" });
    this.error = el("p", { class: "error", role: "alert", hidden: true });
    this.metaTable = el("table", { class: "meta" });
    this.engines = el("table", { class: "engines" });
    this.body = el("div", { class: "doc-body", hidden: true },
        el("section", { class: "doc-meta" }, el("h3", {}, "File"), this.metaTable),
        el("section", { class: "doc-engines" }, el("h3", {}, "Engines"), this.engines));
    this.node = el("article", { class: "doc" }, this.title, this.header, this.uploadSlot, this.error, this.body);
    this.render();
  }

  static async open(id) {
    const view = new DocumentView("", { standalone: true });
    view.setId(id);
    try {
      const { body } = await api("GET", `/docs/${id}/meta`);
      view.applyDocument(body);
      view.render();
      view.follow(body.urls.events);
    } catch (err) {
      view.showError(err.status === 404 ? "No such document for this API key." : err.message);
    }
    return view;
  }

  setId(id) {
    this.doc.id = id;
    this.node.dataset.docId = id;
    this.render();
  }

  showError(message) {
    this.error.hidden = !message;
    this.error.textContent = message || "";
  }

  applyDocument(doc) {
    for (const field of DOC_FIELDS) if (doc[field] !== undefined) this.doc[field] = doc[field];
    this.setStatus(doc.status, doc.reason, doc.expected);
  }

  setStatus(status, reason, expected) {
    if (status && (this.status === null || RANK[status] >= RANK[this.status])) this.status = status;
    if (reason) this.reason = reason;
    if (expected !== undefined && expected !== null) this.expected = expected;
    if (this.expected === null && RANK[this.status] >= RANK.in_progress) this.askExpected();
  }

  // A stream joined mid-scan may never see the status that said how many engines to expect:
  // scan-results says it.
  async askExpected() {
    if (this.asking || !this.doc.id) return;
    this.asking = true;
    try {
      const { body } = await api("GET", `/docs/${this.doc.id}/scan-results`);
      if (this.expected === null && body.summary.expected !== null) this.expected = body.summary.expected;
      this.render();
    } catch {
      this.asking = false; // asked again with the next status
    }
  }

  follow(eventsUrl) {
    let lastId = null;
    let refusals = 0;
    const open = (path) => {
      const stream = new EventSource(path);
      this.stream = stream;
      const on = (name, apply) => stream.addEventListener(name, (e) => {
        if (e.lastEventId) lastId = e.lastEventId;
        refusals = 0;
        apply(JSON.parse(e.data));
        this.render();
      });
      stream.onopen = () => { this.live = "live"; this.render(); };
      on("status", (d) => (d.snapshot ? this.applyDocument(d) : this.setStatus(d.status, d.reason, d.expected)));
      on("meta", (d) => {
        this.doc.sha256 = d.sha256 || this.doc.sha256;
        this.doc.file_type = d.file_type || this.doc.file_type;
        this.doc.script_version = d.script_version || this.doc.script_version;
        this.doc.meta = { ...(d.meta || {}), ...(d.mime_type ? { mime_type: d.mime_type } : {}) };
      });
      on("verdict", (v) => this.verdicts.set(v.scanner, v));
      on("done", (d) => {
        stream.close();
        this.setStatus(d.status, null, d.expected);
        this.finished = true;
        this.live = "";
        window.dispatchEvent(new CustomEvent("intellidox:doc-done", { detail: this.doc.id }));
      });
      stream.onerror = () => {
        if (this.finished) return;
        this.live = "reconnecting";
        this.render();
        if (stream.readyState !== EventSource.CLOSED) return; // the browser retries by itself
        refusals += 1;
        setTimeout(() => this.reopen(open, () => lastId), Math.min(30000, 1000 * 2 ** refusals));
      };
    };
    open(samePath(eventsUrl));
  }

  async reopen(open, lastId) {
    try {
      const { body } = await api("GET", `/docs/${this.doc.id}/meta`);
      const path = samePath(body.urls.events);
      open(lastId() ? `${path}&last_event_id=${encodeURIComponent(lastId())}` : path);
    } catch (err) {
      this.showError(`Live updates stopped: ${err.message}`);
    }
  }

  close() {
    if (this.stream) this.stream.close();
  }

  counts() {
    const counts = { malicious: 0, suspicious: 0 };
    for (const v of this.verdicts.values()) if (v.verdict in counts) counts[v.verdict] += 1;
    return counts;
  }

  render() {
    this.renderTitle();
    this.renderHeader();
    this.renderMeta();
    this.renderEngines();
  }

  renderTitle() {
    const name = this.doc.file_name || "Document";
    const link = this.doc.id && !this.standalone ? el("a", { href: `/d/${this.doc.id}`, class: "permalink" }, "Open page") : null;
    this.title.replaceChildren(...[el("span", { class: "name" }, name), link].filter(Boolean));
  }

  renderHeader() {
    this.body.hidden = !this.status && !this.standalone; // an upload shows its progress first
    if (!this.status) {
      const text = this.standalone ? "Loading…" : "Uploading from this browser";
      this.header.replaceChildren(badge("pending", "↑", this.standalone ? "Loading" : "Uploading"),
        el("p", { class: "ratio" }, text));
      return;
    }
    const counts = this.counts();
    const state = overall(this.status, counts);
    const answered = this.verdicts.size;
    const total = this.expected ?? (TERMINAL.has(this.status) ? answered : null);
    const done = TERMINAL.has(this.status);
    const lines = [];
    if (this.status === "failed" || this.status === "rejected") {
      lines.push(`${STATUSES[this.status].label}${this.reason ? `: ${this.reason}` : ""}`);
    } else if (!done && this.status !== "in_progress") {
      lines.push(STATUSES[this.status].label);
    } else if (!done) {
      lines.push(`Scanning: ${answered} of ${total ?? "?"} engines answered`);
    }
    if (this.live === "reconnecting") lines.push("connection lost, reconnecting…");
    const live = this.live === "live" && !done ? el("span", { class: "live" }, "● live") : null;
    this.header.dataset.status = this.status;
    this.header.replaceChildren(
      badge(state.kind, state.icon, state.label, "badge-big"),
      el("div", { class: "ratio-box" },
        el("p", { class: "ratio" }, ratioText(counts.malicious + counts.suspicious, total, done)),
        lines.length || live ? el("p", { class: "sub" }, lines.join(" · "), live) : null),
    );
  }

  renderMeta() {
    const d = this.doc;
    const rows = [["File name", d.file_name || "–"]];
    rows.push(["SHA-256", d.sha256 ? [el("code", { class: "sha" }, d.sha256), copyButton(d.sha256)] : "not known yet"]);
    rows.push(["Size", d.file_size !== undefined ? `${bytes(d.file_size)} (${exactBytes(d.file_size)})` : "–"]);
    const mime = (d.meta && d.meta.mime_type) || d.content_type;
    rows.push(["Type", [d.file_type || "not known yet", mime ? el("span", { class: "muted" }, ` · ${mime}`) : null]]);
    rows.push(["Status", this.status ? STATUSES[this.status].label : "–"]);
    rows.push(["Created", timeCell(d.created_at)], ["Uploaded", timeCell(d.uploaded_at)], ["Updated", timeCell(d.updated_at)]);
    if (d.script_version) rows.push(["Extractor", d.script_version]);
    for (const [key, value] of Object.entries(d.meta || {})) {
      if (value === null || SHOWN_ABOVE.has(key)) continue;
      if (key === "extraction_ms") rows.push(["Extraction time", `${value} ms`]);
      else rows.push([key.replaceAll("_", " "), String(value)]);
    }
    this.metaTable.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, v))));
  }

  renderEngines() {
    const rank = (v) => (VERDICTS[v.verdict] ? VERDICTS[v.verdict].rank : 9);
    const sorted = [...this.verdicts.values()].sort((a, b) => rank(a) - rank(b) || a.scanner.localeCompare(b.scanner));
    const head = el("tr", {}, ...["Engine", "Verdict", "Result", "Versions", "Time"].map((h) => el("th", { scope: "col" }, h)));
    const rows = sorted.map((v) => el("tr", { dataset: { scanner: v.scanner, verdict: v.verdict } },
      el("td", { "data-label": "Engine" }, el("strong", {}, v.scanner), v.vendor ? el("span", { class: "muted" }, ` ${v.vendor}`) : null),
      el("td", { "data-label": "Verdict" }, verdictBadge(v.verdict),
        v.reused ? el("span", { class: "note" }, " reused") : null, v.late ? el("span", { class: "note" }, " late") : null,
        v.rescan ? el("span", { class: "note" }, ` rescanned (was ${v.previous_verdict})`) : null,
        v.signatures_stale ? el("span", { class: "note" }, " old signatures") : null),
      el("td", { "data-label": "Result", class: "result" }, v.result || "–"),
      el("td", { "data-label": "Versions", class: "muted" }, [v.engine_version, v.signatures_version].filter(Boolean).join(" · ") || "–"),
      el("td", { "data-label": "Time" }, duration(v))));
    const waiting = this.expected && this.verdicts.size < this.expected && !TERMINAL.has(this.status)
      ? el("tr", { class: "waiting" }, el("td", { colspan: "5" }, `Waiting for ${this.expected - this.verdicts.size} more…`)) : null;
    const empty = rows.length || waiting ? null : el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No verdict yet"));
    this.engines.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows, waiting, empty));
  }
}
