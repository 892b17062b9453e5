// Small DOM and formatting helpers. Text always goes in as text nodes, never as HTML.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (typeof value !== "string" && name in node) node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const UNITS = ["bytes", "KiB", "MiB", "GiB", "TiB"];

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(n)} bytes`;
  if (Number.isInteger(value)) return `${value} ${UNITS[unit]}`; // 1 GiB, not 1.00 GiB
  return `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export const exactBytes = (n) => `${Number(n).toLocaleString("en-US")} bytes`;

export function when(iso) {
  if (!iso) return "–";
  const at = new Date(iso);
  const pad = (v) => String(v).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} `
    + `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

export function timeCell(iso) {
  return el("time", { datetime: iso || "", title: iso || "" }, when(iso));
}

// Verdict classes: a colour (CSS class), an icon and a word, so none relies on colour alone.
export const VERDICTS = {
  malicious: { label: "Malicious", icon: "✖", rank: 0 },
  suspicious: { label: "Suspicious", icon: "▲", rank: 1 },
  clean: { label: "Clean", icon: "✔", rank: 2 },
  timeout: { label: "Timed out", icon: "⏱", rank: 3 },
  error: { label: "Error", icon: "!", rank: 3 },
  too_large: { label: "Too large", icon: "–", rank: 3 },
  unsupported: { label: "Unsupported", icon: "–", rank: 3 },
};

export const STATUSES = {
  requested: { label: "Not uploaded", icon: "…" },
  uploaded: { label: "Uploaded", icon: "↑" },
  in_progress: { label: "Scanning", icon: "⟳" },
  done: { label: "Done", icon: "✔" },
  failed: { label: "Failed", icon: "!" },
  rejected: { label: "Rejected", icon: "!" },
};

export const TERMINAL = new Set(["done", "failed", "rejected"]);

export function badge(kind, icon, label, extraClass = "") {
  return el("span", { class: `badge badge-${kind} ${extraClass}`.trim() },
    el("span", { class: "icon", "aria-hidden": "true" }, icon), el("span", { class: "label" }, label));
}

export function verdictBadge(verdict) {
  const known = VERDICTS[verdict] || { label: verdict || "unknown", icon: "?" };
  return badge(VERDICTS[verdict] ? verdict : "other", known.icon, known.label);
}

// The document's overall state: in progress, or the worst verdict once it is finished.
export function overall(status, counts) {
  if (status === "failed" || status === "rejected") return { kind: "other", ...STATUSES[status] };
  if (!TERMINAL.has(status)) return { kind: "pending", ...(STATUSES[status] || STATUSES.requested) };
  if (counts.malicious > 0) return { kind: "malicious", ...VERDICTS.malicious };
  if (counts.suspicious > 0) return { kind: "suspicious", ...VERDICTS.suspicious };
  return { kind: "clean", ...VERDICTS.clean };
}

export function ratioText(flagged, total, finished) {
  const of = total === null || total === undefined ? "?" : total;
  const noun = of === 1 ? "engine" : "engines";
  return `${flagged} / ${of} ${noun} flagged this file${finished ? "" : " so far"}`;
}
