// The incident banner: polls /api/incidents (no reload) and shows what is failing, since when
// and how many inquiries; offers the incident's draft and, to editors, closing it.
(function () {
  "use strict";

  const FALLBACK_POLL_MS = 3000;
  let pollMs = FALLBACK_POLL_MS;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function localTime(iso) {
    const moment = new Date(iso);
    return moment.toLocaleString("ko-KR", { timeZone: "Asia/Seoul", month: "numeric", day: "numeric",
                                            hour: "2-digit", minute: "2-digit", hour12: false });
  }

  function headers() {
    const result = { "Content-Type": "application/json", Accept: "application/json" };
    const token = document.querySelector('meta[name="csrf-token"]');
    if (token) result["X-CSRF-Token"] = token.getAttribute("content");
    return result;
  }

  function useDraft(text) {
    const box = document.getElementById("draft-text");
    if (box) {
      box.value = text;
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }
    if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
  }

  function closeForm(incident) {
    const form = el("form", "incident-close");
    const note = el("textarea");
    note.name = "resolution_note";
    note.rows = 2;
    note.required = true;
    note.placeholder = "복구 안내 (고객에게 보일 문구)";
    note.setAttribute("aria-label", "복구 안내");
    const submit = el("button", "", "복구 처리");
    submit.type = "submit";
    const status = el("span", "status");
    form.append(note, submit, status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await fetch(`/api/incidents/${incident.id}/close`, {
        method: "POST", headers: headers(), credentials: "same-origin",
        body: JSON.stringify({ resolution_note: note.value }),
      });
      const data = await response.json().catch(() => null);
      status.textContent = response.ok ? "종료했어요." : (data && data.message_ko) || "종료하지 못했어요.";
      if (response.ok) poll();
    });
    return form;
  }

  function item(incident, canClose) {
    const open = incident.status === "open";
    const box = el("div", open ? "incident open" : "incident closed");
    box.dataset.incidentId = incident.id;
    const title = el("strong", "incident-title", open
      ? `장애 #${incident.id} · ${incident.symptom}`
      : `복구됨 #${incident.id} · ${incident.symptom}`);
    const facts = el("span", "incident-facts", open
      ? `${localTime(incident.first_inquiry_at)}부터 · 문의 ${incident.inquiries}건`
      : `${localTime(incident.closed_at)} 복구 · 문의 ${incident.inquiries}건`);
    facts.dataset.count = incident.inquiries;
    box.append(title, facts);
    if (incident.draft) {
      const use = el("button", "incident-draft", open ? "대기 안내를 초안으로" : "복구 안내를 초안으로");
      use.type = "button";
      use.title = incident.draft_reason_ko || "";
      const done = el("span", "status");
      done.setAttribute("role", "status");
      use.addEventListener("click", () => {
        useDraft(incident.draft);
        done.textContent = "초안에 넣고 복사했어요.";
      });
      box.append(use, done);
    }
    if (open && canClose) box.append(closeForm(incident));
    return box;
  }

  let shown = "";

  function render(incidents) {
    const banner = document.getElementById("incident-banner");
    const canClose = banner.dataset.canClose === "1";
    const typing = banner.contains(document.activeElement) && document.activeElement.tagName === "TEXTAREA";
    const state = JSON.stringify(incidents);
    if (typing || state === shown) return; // an editor writing the note keeps the focus
    shown = state;
    // Notes half written survive the redraw (the count moves while an editor types).
    const notes = {};
    banner.querySelectorAll(".incident").forEach((box) => {
      const note = box.querySelector("textarea");
      if (note && note.value) notes[box.dataset.incidentId] = note.value;
    });
    banner.replaceChildren(...incidents.map((incident) => item(incident, canClose)));
    banner.querySelectorAll(".incident").forEach((box) => {
      const note = box.querySelector("textarea");
      if (note && notes[box.dataset.incidentId]) note.value = notes[box.dataset.incidentId];
    });
    banner.hidden = incidents.length === 0;
  }

  async function poll() {
    try {
      const response = await fetch("/api/incidents", { headers: { Accept: "application/json" },
                                                      credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        pollMs = (data.poll_seconds || 3) * 1000;
        render(data.incidents);
      }
    } catch (error) {
      // The server restarting must not stop the banner: try again at the next tick.
    }
  }

  function loop() {
    poll().finally(() => setTimeout(loop, pollMs));
  }

  document.addEventListener("DOMContentLoaded", loop);
})();
