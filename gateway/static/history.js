// The tenant's documents, newest first (GET /docs): status, ratio, a filter by name or
// SHA-256, and cursor paging (the cursors of the pages seen so far make "Newer" work).

import { api } from "./api.js";
import { STATUSES, TERMINAL, VERDICTS, badge, bytes, el, timeCell } from "./dom.js";

const SHA256 = /^[0-9a-f]{64}$/i;
const PAGE_SIZES = [10, 20, 50];

function stateBadge(doc) {
  if (doc.status === "done" && doc.verdict && VERDICTS[doc.verdict]) {
    const v = VERDICTS[doc.verdict];
    return badge(doc.verdict, v.icon, v.label);
  }
  const s = STATUSES[doc.status] || { icon: "?", label: doc.status };
  return badge(TERMINAL.has(doc.status) ? "other" : "pending", s.icon, s.label);
}

function ratio(doc) {
  const { flagged, scanned, expected } = doc.summary;
  if (doc.status === "requested" || doc.status === "uploaded" || doc.status === "rejected") return "–";
  const total = expected ?? scanned;
  return `${flagged} / ${total}${TERMINAL.has(doc.status) ? "" : " so far"}`;
}

export class History {
  constructor() {
    this.cursors = [null]; // the `after` of every page seen; the last one is shown
    this.filter = "";
    this.limit = 20;
    this.input = el("input", {
      type: "search", name: "filter", placeholder: "File name or SHA-256", "aria-label": "Filter by file name or SHA-256",
      autocomplete: "off", spellcheck: false,
    });
    this.size = el("select", { name: "limit", "aria-label": "Documents per page" },
      ...PAGE_SIZES.map((n) => el("option", { value: String(n), selected: n === this.limit }, `${n} per page`)));
    this.form = el("form", { class: "filter", role: "search" }, this.input, this.size, el("button", { type: "submit" }, "Filter"));
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.search(); });
    this.size.addEventListener("change", () => { this.limit = Number(this.size.value); this.search(); });
    this.status = el("p", { class: "muted history-status", "aria-live": "polite" });
    this.list = el("ol", { class: "history-list" });
    this.newer = el("button", { type: "button", onclick: () => this.go(-1) }, "← Newer");
    this.older = el("button", { type: "button", onclick: () => this.go(1) }, "Older →");
    this.pageNo = el("span", { class: "page-no" });
    this.node = el("section", { class: "history", "aria-labelledby": "history-title" },
      el("h2", { id: "history-title" }, "History"), this.form, this.status, this.list,
      el("nav", { class: "pager", "aria-label": "History pages" }, this.newer, this.pageNo, this.older));
    const refresh = () => { if (this.cursors.length === 1) this.load(); }; // only the newest page moves
    window.addEventListener("intellidox:doc-done", refresh);
    window.addEventListener("intellidox:history-changed", refresh);
  }

  search() {
    this.filter = this.input.value.trim();
    this.cursors = [null];
    return this.load();
  }

  go(step) {
    if (step > 0 && this.next) this.cursors.push(this.next);
    if (step < 0 && this.cursors.length > 1) this.cursors.pop();
    return this.load();
  }

  query() {
    const params = new URLSearchParams({ limit: String(this.limit) });
    const after = this.cursors[this.cursors.length - 1];
    if (after) params.set("after", after);
    if (SHA256.test(this.filter)) params.set("sha256", this.filter.toLowerCase());
    else if (this.filter) params.set("q", this.filter);
    return `/docs?${params}`;
  }

  async load() {
    this.status.textContent = "Loading…";
    this.loads = (this.loads || 0) + 1;
    const mine = this.loads; // refreshes overlap: only the latest one may draw
    try {
      const { body } = await api("GET", this.query());
      if (mine !== this.loads) return;
      this.next = body.next ? body.next.after : null;
      this.render(body.documents);
    } catch (err) {
      this.status.textContent = `Could not load the history: ${err.message}`;
    }
  }

  render(docs) {
    const page = this.cursors.length;
    const what = this.filter ? ` matching “${this.filter}”` : "";
    this.status.textContent = docs.length ? `Page ${page}: ${docs.length} document${docs.length === 1 ? "" : "s"}${what}`
      : `No documents${what}${page > 1 ? " on this page" : ""}.`;
    this.list.replaceChildren(...docs.map((doc) => el("li", { class: "history-item", dataset: { docId: doc.id, status: doc.status } },
      stateBadge(doc),
      el("a", { class: "name", href: `/d/${doc.id}` }, doc.file_name),
      el("span", { class: "ratio", title: "engines that flagged it / engines asked" }, ratio(doc)),
      el("span", { class: "size" }, bytes(doc.file_size)),
      timeCell(doc.created_at),
      el("code", { class: "sha", title: doc.sha256 || "" }, doc.sha256 ? `${doc.sha256.slice(0, 12)}…` : "–"))));
    this.pageNo.textContent = `Page ${page}`;
    this.newer.disabled = page === 1;
    this.older.disabled = !this.next;
  }
}
