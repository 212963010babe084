// sohoa manager pages: small progressive enhancements (the pages work without them).
"use strict";

// report form: show only the fields of the chosen kind of period (month, quarter, …, date range)
function syncPeriodFields() {
  const kind = document.getElementById("kind");
  if (!kind) return;
  for (const box of document.querySelectorAll("[data-kinds]")) {
    const on = box.dataset.kinds.split(" ").includes(kind.value);
    box.hidden = !on;
    for (const el of box.querySelectorAll("input, select")) el.disabled = !on;
  }
}

// charts: a click on a unit's bar opens its drill-down (keyboard users follow the links in the table beside)
function openBar(ev) {
  const row = ev.target.closest("svg.chart [data-href]");
  if (row) window.location = row.dataset.href;
}

document.addEventListener("DOMContentLoaded", () => {
  const kind = document.getElementById("kind");
  if (kind) { kind.addEventListener("change", syncPeriodFields); syncPeriodFields(); }
  for (const svg of document.querySelectorAll("svg.chart")) svg.addEventListener("click", openBar);
});
