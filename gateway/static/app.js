// The page: the API key (typed once per tab), then either the upload form and the history
// (/) or one document's live view (/d/{id}).

import { keyStore, pageConfig } from "./api.js";
import { DocumentView } from "./docview.js";
import { el } from "./dom.js";
import { History } from "./history.js";
import { UploadView, tooLargeMessage, uploadFile } from "./upload.js";

const DEEP_LINK = /^\/d\/([0-9a-fA-F-]{36})\/?$/;
const main = document.getElementById("main");
const keyPanel = document.getElementById("key-panel");
let config = { dev_mode: false, dev_api_key: null, max_file_size: 2 ** 30 };
let keyMessage = "";
const DEV_KEY_OFFERED = "intellidox.devKeyOffered"; // once per tab: "Change" must be able to drop it

function keyForm() {
  const input = el("input", {
    type: "password", name: "api-key", autocomplete: "off", required: true, placeholder: "API key", "aria-label": "API key",
  });
  const form = el("form", { class: "key-form" }, input, el("button", { type: "submit" }, "Use key"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    keyStore.set(input.value.trim());
    keyMessage = "";
    start();
  });
  return form;
}

function renderKeyPanel() {
  const key = keyStore.get();
  if (!key) {
    keyPanel.replaceChildren(keyForm());
    return;
  }
  const dev = config.dev_mode && key === config.dev_api_key ? " (dev key)" : "";
  const forget = el("button", { type: "button", class: "link" }, "Change");
  forget.addEventListener("click", () => {
    keyStore.clear();
    start();
    keyPanel.querySelector("input").focus();
  });
  keyPanel.replaceChildren(el("span", { class: "key-shown", title: "kept for this tab only" }, `Key ····${key.slice(-4)}${dev}`), forget);
}

function askForKey() {
  main.replaceChildren(el("section", { class: "intro" },
    el("h1", {}, "Scan documents with every engine at once"),
    el("p", {}, "Type your API key above to upload files and see your history. It is kept for this browser tab only."),
    keyMessage ? el("p", { class: "error", role: "alert" }, keyMessage) : null));
}

function homePage() {
  const input = el("input", { type: "file", id: "file", name: "file", multiple: true });
  const notices = el("div", { class: "notices", role: "alert" });
  const uploads = el("div", { class: "uploads" });
  const history = new History();
  const form = el("form", { class: "upload-form" },
    el("label", { for: "file", class: "drop" }, el("strong", {}, "Choose files"), " or drop them here ",
      el("span", { class: "muted" }, `(up to ${Math.round(config.max_file_size / 2 ** 30)} GiB each)`)),
    input, el("button", { type: "submit" }, "Upload"));
  const send = (files) => startUploads([...files], notices, uploads);
  form.addEventListener("submit", (e) => { e.preventDefault(); send(input.files); input.value = ""; });
  form.addEventListener("dragover", (e) => { e.preventDefault(); form.classList.add("dragging"); });
  form.addEventListener("dragleave", () => form.classList.remove("dragging"));
  form.addEventListener("drop", (e) => { e.preventDefault(); form.classList.remove("dragging"); send(e.dataTransfer.files); });
  main.replaceChildren(el("section", { class: "upload-section" }, el("h1", {}, "Upload"), form, notices), uploads, history.node);
  history.load();
}

function startUploads(files, notices, uploads) {
  notices.replaceChildren();
  for (const file of files) {
    const tooLarge = tooLargeMessage(file, config.max_file_size);
    if (tooLarge) {
      notices.append(el("p", { class: "error" }, tooLarge)); // before any request is made
      continue;
    }
    const view = new DocumentView(file.name);
    const progress = new UploadView(file);
    view.uploadSlot.append(progress.node);
    uploads.prepend(view.node);
    uploadFile(file, progress)
      .then((ticket) => {
        view.setId(ticket.id);
        view.follow(ticket.urls.events);
        window.dispatchEvent(new CustomEvent("intellidox:history-changed"));
      })
      .catch((err) => {
        progress.failed(err.message);
        view.showError(`${file.name}: ${err.message}`);
      });
  }
}

async function documentPage(id) {
  const back = el("p", {}, el("a", { href: "/" }, "← Upload and history"));
  main.replaceChildren(back, el("p", { class: "muted" }, "Loading…"));
  const view = await DocumentView.open(id);
  main.replaceChildren(back, view.node);
  document.title = `${view.doc.file_name || id} · IntelliDox`;
}

function start() {
  if (!keyStore.get() && config.dev_api_key && !sessionStorage.getItem(DEV_KEY_OFFERED)) {
    keyStore.set(config.dev_api_key); // dev mode only: the gateway hands out no key otherwise
    sessionStorage.setItem(DEV_KEY_OFFERED, "1");
  }
  renderKeyPanel();
  if (!keyStore.get()) return askForKey();
  const deep = DEEP_LINK.exec(window.location.pathname);
  return deep ? documentPage(deep[1]) : homePage();
}

window.addEventListener("intellidox:key-rejected", (e) => {
  keyMessage = `The gateway refused that key (${e.detail || "401"}). Type another one.`;
  start();
});

config = await pageConfig();
start();
