// Editor pages: live preview with lint findings, and confirmation before publishing, archiving
// or restoring. No inline scripts anywhere, so a strict Content-Security-Policy can be used.
(function () {
  "use strict";

  var PREVIEW_DELAY_MS = 400;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function renderFindings(list, findings) {
    list.textContent = "";
    if (!findings.length) {
      var ok = document.createElement("li");
      ok.className = "finding-ok";
      ok.textContent = "문제 없음";
      list.appendChild(ok);
      return;
    }
    findings.forEach(function (f) {
      var item = document.createElement("li");
      item.className = "finding-" + f.severity;
      var where = document.createElement("code");
      where.textContent = f.where;
      item.appendChild(where);
      item.appendChild(document.createTextNode(
        " " + (f.severity === "error" ? "오류" : "경고") + ": " + f.message));
      list.appendChild(item);
    });
  }

  function cell(row, parts) {
    var td = document.createElement("td");
    parts.forEach(function (part) {
      var node = document.createElement(part[0]);
      if (part[1]) node.className = part[1];
      node.textContent = part[2];
      td.appendChild(node);
      td.appendChild(document.createTextNode(" "));
    });
    row.appendChild(td);
  }

  function renderConflicts(table, conflicts) {
    table.textContent = "";
    if (!conflicts.length) {
      var none = table.insertRow();
      none.className = "conflict-none";
      var td = none.insertCell();
      td.colSpan = 2;
      td.textContent = "겹치거나 어긋나는 문장 없음";
      return;
    }
    conflicts.forEach(function (c) {
      var row = table.insertRow();
      row.className = "conflict-" + c.kind;
      cell(row, [["span", "conflict-label", c.label], ["code", "", "줄 " + c.line],
                 ["span", "", c.text]]);
      cell(row, [["code", "", c.where], ["span", "", c.other_text],
                 ["span", "muted", "(" + c.detail + ")"]]);
    });
  }

  function setUpPreview(form) {
    var source = form.querySelector("textarea[name=source]");
    var preview = document.getElementById("preview");
    var findings = document.getElementById("findings");
    if (!source || !preview || !findings) return;
    var timer = null;
    var latest = 0;

    function refresh() {
      var ticket = ++latest;
      fetch(form.dataset.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json",
                  "X-CSRF-Token": csrfToken()},
        body: JSON.stringify({source: source.value, article_id: form.dataset.articleId})
      }).then(function (response) {
        if (!response.ok) throw new Error("preview failed: " + response.status);
        return response.json();
      }).then(function (body) {
        if (ticket !== latest) return;  // a newer keystroke already asked again
        // The server renders with raw HTML disabled (markdown-it html=false): safe to insert.
        preview.innerHTML = body.html;
        preview.classList.remove("stale");  // a failed refresh before this one is repaired
        renderFindings(findings, body.findings);
        var conflicts = document.getElementById("conflicts");
        if (conflicts && body.conflicts) renderConflicts(conflicts, body.conflicts);
      }).catch(function () {
        preview.classList.add("stale");
      });
    }

    source.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, PREVIEW_DELAY_MS);
    });
  }

  function setUpConfirmations() {
    document.querySelectorAll("[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.dataset.confirm)) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("edit-form");
    if (form) setUpPreview(form);
    setUpConfirmations();
  });
})();
