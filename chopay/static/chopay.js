// chopay pages: small progressive behaviours. Every page works without this file.
"use strict";

// <form data-confirm="..."> asks before it is sent.
function chopayConfirms() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

// <input data-filter-table="id"> hides the rows of table #id whose text does not contain it;
// <select data-filter-table="id" data-filter-column="n"> keeps the rows whose cell n equals it.
function chopayFilters() {
  const controls = document.querySelectorAll("[data-filter-table]");
  const apply = (tableId) => {
    const table = document.getElementById(tableId);
    if (!table) return;
    const active = [...document.querySelectorAll(`[data-filter-table="${tableId}"]`)];
    let shown = 0;
    table.querySelectorAll("tbody tr").forEach((row) => {
      const keep = active.every((control) => {
        const value = control.value.trim().toLowerCase();
        if (!value) return true;
        if (control.dataset.filterColumn !== undefined) {
          const cell = row.cells[Number(control.dataset.filterColumn)];
          return cell !== undefined && cell.textContent.trim().toLowerCase() === value;
        }
        return row.textContent.toLowerCase().includes(value);
      });
      row.hidden = !keep;
      if (keep) shown += 1;
    });
    const counter = document.querySelector(`[data-filter-count="${tableId}"]`);
    if (counter) counter.textContent = String(shown);
  };
  controls.forEach((control) => {
    control.addEventListener("input", () => apply(control.dataset.filterTable));
    const form = control.closest("form");
    if (form) form.addEventListener("submit", (event) => { event.preventDefault(); apply(control.dataset.filterTable); });
  });
}

// <section data-poll="url" data-poll-every="ms"> fetches url (JSON) and fills each
// [data-field="a.b"] inside it with that value; [data-format="vnd"] shows money,
// "number" a count, "rate" one decimal, "whole" a rounded number.
const chopayMoney = new Intl.NumberFormat("vi-VN");
function chopayFormat(value, format) {
  if (value === null || value === undefined) return "—";
  if (format === "vnd") return `${chopayMoney.format(value)}\u00a0₫`;
  if (format === "number") return chopayMoney.format(value);
  if (format === "rate") return chopayMoney.format(Math.round(value * 10) / 10);
  if (format === "whole") return chopayMoney.format(Math.round(value));
  return String(value);
}
function chopayPoll() {
  document.querySelectorAll("[data-poll]").forEach((section) => {
    const every = Number(section.dataset.pollEvery || 2000);
    const tick = async () => {
      try {
        const answer = await fetch(section.dataset.poll, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!answer.ok) return;
        const data = await answer.json();
        section.querySelectorAll("[data-field]").forEach((el) => {
          const value = el.dataset.field.split(".").reduce((node, key) => (node == null ? node : node[key]), data);
          if (el.tagName === "PROGRESS") {
            if (typeof value === "number") el.value = value;
          } else {
            el.textContent = chopayFormat(value, el.dataset.format);
          }
        });
        section.dispatchEvent(new CustomEvent("chopay:polled", { detail: data }));
        // A new status brings other parts of the page (the report, the approval): show them.
        if (section.dataset.status && data.status && data.status !== section.dataset.status) {
          window.location.reload();
          return;
        }
        if (data.final) return;
      } catch (error) {
        // the next tick tries again
      }
      window.setTimeout(tick, every);
    };
    window.setTimeout(tick, every);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  chopayConfirms();
  chopayFilters();
  chopayPoll();
});
