// Sort a table by the clicked column: numbers by each cell's data-value (blank last), text by its content.
"use strict";
function sortTable(table, column, type, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = (row) => {
    const cell = row.cells[column];
    if (type === "number") {
      const raw = cell.dataset.value;
      return raw === undefined || raw === "" ? null : parseFloat(raw);
    }
    return cell.textContent.trim().toLowerCase();
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null && y === null) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    const order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  rows.forEach((row) => body.appendChild(row));
}
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach((table) => {
    Array.from(table.tHead.rows[0].cells).forEach((th, column) => {
      if (!th.dataset.type) return;
      th.addEventListener("click", () => {
        const descending = th.getAttribute("aria-sort") === "ascending";
        Array.from(table.tHead.rows[0].cells).forEach((other) => other.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortTable(table, column, th.dataset.type, descending);
      });
    });
  });
});
