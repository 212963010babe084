// sohoa pages: small progressive enhancements, no framework. Every request that changes something
// carries the session's CSRF token (main[data-csrf]).
"use strict";
const sohoa = {
  csrf() { const m = document.querySelector("main"); return m ? m.dataset.csrf : ""; },
  async json(url, opts = {}) {
    const headers = Object.assign({"X-CSRF-Token": sohoa.csrf()}, opts.headers || {});
    const r = await fetch(url, Object.assign({credentials: "same-origin"}, opts, {headers}));
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return {ok: r.ok, status: r.status, body};
  },
  message(body, fallback) {
    if (body && body.detail) {
      if (typeof body.detail === "string") return body.detail;
      if (body.detail.message) return body.detail.message;
      if (Array.isArray(body.detail)) return body.detail.map(d => d.msg).join("; ");
    }
    return fallback;
  },
};
window.sohoa = sohoa;

// forms that ask before doing something that cannot be undone
document.addEventListener("submit", (ev) => {
  const f = ev.target;
  if (f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) ev.preventDefault();
});

// page view: ← → between pages, n / p between the pages that hold the query's words
document.addEventListener("keydown", (ev) => {
  const view = document.getElementById("view");
  if (!view || ev.target.matches("input, textarea, select") || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const go = (id) => { const a = document.getElementById(id); if (a) window.location = a.href; };
  if (ev.key === "ArrowLeft") go("prev");
  else if (ev.key === "ArrowRight") go("next");
  else if (ev.key === "n" || ev.key === "p") {
    const hits = (view.dataset.hitPages || "").split(",").filter(Boolean).map(Number);
    const cur = Number(view.dataset.number);
    const target = ev.key === "n" ? hits.find(x => x > cur) : hits.reverse().find(x => x < cur);
    if (target) window.location = `/view/${view.dataset.doc}/${target}` + (view.dataset.qs ? `?${view.dataset.qs}` : "");
  }
});

// live status of documents: elements with data-doc-id are refreshed until done or failed
async function refreshStatuses() {
  const cells = [...document.querySelectorAll("[data-doc-id]")].filter(c => !["done", "failed"].includes(c.dataset.status));
  for (const cell of cells) {
    const r = await sohoa.json(`/documents/${cell.dataset.docId}`);
    if (!r.ok) continue;
    const d = r.body;
    cell.dataset.status = d.status;
    const label = {received: "đã nhận", queued: "chờ xử lý", processing: "đang xử lý", done: "xong", failed: "lỗi"}[d.status] || d.status;
    let text = label;
    if (d.status === "processing") text += ` trang ${d.progress.pages_done}/${d.progress.pages_total}`;
    if (d.status === "failed" && d.error) text += `: ${d.error}`;
    cell.textContent = text;
    cell.className = "status badge " + (d.status === "done" ? "ok" : d.status === "failed" ? "bad" : "warn");
  }
  if (cells.length) setTimeout(refreshStatuses, 1500);
}
document.addEventListener("DOMContentLoaded", () => { if (document.querySelector("[data-doc-id]")) refreshStatuses(); });
