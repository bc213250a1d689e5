// Sort and filter the results table. Vanilla JS, no library: the report must open offline.
"use strict";
(function () {
  const table = document.getElementById("results-table");
  if (!table) return;
  const body = table.tBodies[0];
  const filter = document.getElementById("filter");
  const statusFilter = document.getElementById("status-filter");
  const shown = document.getElementById("shown");

  function cellKey(row, index, numeric) {
    const cell = row.cells[index];
    const raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    const value = parseFloat(raw);
    return Number.isNaN(value) ? null : value;
  }

  Array.from(table.tHead.rows[0].cells).forEach(function (th, index) {
    th.addEventListener("click", function () {
      const numeric = th.dataset.type === "num";
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.from(table.tHead.rows[0].cells).forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = cellKey(a, index, numeric);
        const y = cellKey(b, index, numeric);
        if (x === null && y === null) return 0;
        if (x === null) return 1; // blanks (points without a result) always last
        if (y === null) return -1;
        const order = x < y ? -1 : x > y ? 1 : 0;
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });

  function applyFilter() {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const status = statusFilter.value;
    let count = 0;
    Array.from(body.rows).forEach(function (row) {
      const text = row.textContent.toLowerCase();
      const match = (!status || row.dataset.status === status) &&
        words.every(function (w) { return text.includes(w); });
      row.hidden = !match;
      if (match) count += 1;
    });
    shown.textContent = count + " of " + body.rows.length + " points shown";
  }
  filter.addEventListener("input", applyFilter);
  statusFilter.addEventListener("change", applyFilter);
  applyFilter();
})();
