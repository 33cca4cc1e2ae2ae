// The vendor's pages: payments arriving live, the full-screen QR of an amount, the poster's print button.
// Every page works without this file: the form then opens the QR on a page of its own.
"use strict";

const vendorMoney = new Intl.NumberFormat("vi-VN");
const vendorTime = new Intl.DateTimeFormat("vi-VN", {
  timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
});
const vendorDay = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh", year: "numeric", month: "2-digit", day: "2-digit" });
const vnd = (amount) => `${vendorMoney.format(amount)}\u00a0₫`;
const vnTime = (iso) => {
  const parts = Object.fromEntries(vendorTime.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${parts.day}/${parts.month}/${parts.year} ${parts.hour}:${parts.minute}`;
};
const paidStatuses = new Set(["paid", "overpaid"]);

// Listeners of payment events besides the table (the open QR screen).
const paymentListeners = [];

function vendorLive() {
  const section = document.getElementById("today");
  if (!section || !window.EventSource) return;
  const table = document.querySelector("#payments tbody");
  const count = document.getElementById("today-count");
  const total = document.getElementById("today-total");
  const state = document.getElementById("live-state");
  const empty = document.getElementById("no-payments");
  let sum = Number(total.dataset.amount || 0);
  let n = Number(count.dataset.count || 0);
  const source = new EventSource(section.dataset.events);
  source.addEventListener("open", () => { state.textContent = state.dataset.live; });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) state.textContent = state.dataset.offline;
  });
  source.addEventListener("payment.received", (event) => {
    const data = JSON.parse(event.data);
    paymentListeners.forEach((listener) => listener(data));
    if (table.querySelector(`tr[data-payment="${data.payment}"]`)) return; // already shown
    if (vendorDay.format(new Date(data.occurred_at)) !== section.dataset.day) return; // not today's
    const row = document.createElement("tr");
    row.dataset.payment = String(data.payment);
    const cells = [vnTime(data.occurred_at), vnd(data.amount), section.dataset[data.reference ? "kindIntent" : "kindStatic"] || ""];
    cells.forEach((text, i) => {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (i === 1) cell.className = "num";
      row.appendChild(cell);
    });
    if (data.reference) {
      const ref = document.createElement("span");
      ref.className = "mono";
      ref.textContent = data.reference;
      row.cells[2].append(" · ", ref);
    }
    row.classList.add("arrived");
    table.prepend(row);
    sum += data.amount;
    n += 1;
    total.textContent = vnd(sum);
    total.dataset.amount = String(sum);
    count.textContent = vendorMoney.format(n);
    count.dataset.count = String(n);
    if (empty) empty.hidden = true;
  });
}

// Show an intent's status; once it is final, stop watching it.
function showIntentStatus(element, data) {
  element.textContent = data.status_label;
  element.classList.toggle("paid", paidStatuses.has(data.status));
  element.dataset.status = data.status;
}

function watchIntent(statusUrl, element, reference, onFinal) {
  let done = false;
  const check = async () => {
    if (done) return;
    try {
      const answer = await fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (answer.ok) {
        const data = await answer.json();
        showIntentStatus(element, data);
        if (data.final) { done = true; if (onFinal) onFinal(data); return; }
      }
    } catch (error) {
      // the next check tries again
    }
    window.setTimeout(check, 3000);
  };
  // A payment with the intent's reference: ask for its status at once.
  paymentListeners.push((data) => { if (!done && data.reference === reference) check(); });
  window.setTimeout(check, 3000);
  return () => { done = true; };
}

function vendorIntentForm() {
  const form = document.getElementById("intent-form");
  const dialog = document.getElementById("intent-screen");
  if (!form || !dialog || typeof dialog.showModal !== "function") return;
  const error = document.getElementById("amount-error");
  const input = form.querySelector("input[name=amount]");
  let stop = null;
  dialog.addEventListener("close", () => { if (stop) stop(); stop = null; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json", "X-CSRFToken": form.elements.csrf_token.value },
      credentials: "same-origin",
    });
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const messages = data.errors ? Object.values(data.errors).flat() : [String(answer.status)];
      error.textContent = messages.join(" ");
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "amount-error");
      return;
    }
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    const holder = document.getElementById("intent-qr");
    const svg = new DOMParser().parseFromString(data.qr_svg, "image/svg+xml").documentElement;
    holder.replaceChildren(document.importNode(svg, true));
    holder.hidden = false;
    document.getElementById("intent-amount").textContent = vnd(data.amount);
    const status = document.getElementById("intent-status");
    showIntentStatus(status, data);
    const title = document.getElementById("intent-title");
    title.textContent = dialog.dataset.titleOpen;
    dialog.dataset.intent = data.id;
    dialog.showModal();
    stop = watchIntent(data.status_url, status, data.reference, () => {
      // Paid, or no longer payable (expired, cancelled, paid too little): the QR is not shown again.
      holder.hidden = true;
      title.textContent = dialog.dataset.titleFinal;
    });
  });
}

function vendorIntentPage() {
  const page = document.getElementById("intent-page");
  if (!page || page.dataset.final === "true") return;
  const holder = document.getElementById("intent-qr");
  watchIntent(page.dataset.statusUrl, document.getElementById("intent-status"), null, () => {
    if (holder) holder.hidden = true;
  });
}

function vendorPrint() {
  document.querySelectorAll("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));
}

document.addEventListener("DOMContentLoaded", () => {
  vendorLive();
  vendorIntentForm();
  vendorIntentPage();
  vendorPrint();
});
