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

  function text(tag, value, className) {
    var node = document.createElement(tag);
    node.textContent = value;
    if (className) node.className = className;
    return node;
  }

  function renderImpact(report) {
    var warnings = document.getElementById("impact-warnings");
    warnings.textContent = "";
    report.warnings.forEach(function (w) {
      warnings.appendChild(text("li", "게시하면 기준 아래로 떨어져요: " + w, "finding-error"));
    });
    var figures = document.getElementById("impact-figures");
    figures.textContent = "";
    var head = figures.insertRow();
    ["지표", "지금", "게시 후"].forEach(function (h) { head.appendChild(text("th", h)); });
    Object.keys(report.figures).forEach(function (name) {
      var row = figures.insertRow();
      var values = report.figures[name];
      [name, values.before, values.after].forEach(function (v) {
        row.appendChild(text("td", v === null ? "—" : String(v)));
      });
    });
    document.getElementById("impact-summary").textContent =
      "문의 " + report.inquiries + "건 중 " + report.changes.length + "건이 바뀝니다 (" +
      report.seconds + "초).";
    var changes = document.getElementById("impact-changes");
    changes.textContent = "";
    var top = changes.insertRow();
    ["문의", "지금", "게시 후"].forEach(function (h) { top.appendChild(text("th", h)); });
    report.changes.forEach(function (c) {
      var row = changes.insertRow();
      row.className = "impact-change";
      var ask = row.insertCell();
      ask.appendChild(text("div", c.inquiry));
      ask.appendChild(text("div", c.changed.join(", "), "impact-what"));
      [c.before, c.after].forEach(function (side) {
        var cell = row.insertCell();
        cell.appendChild(text("div", side.first_article + (side.grounded ? "" : " (근거 없음)"),
                              "muted"));
        cell.appendChild(text("div", side.draft, "impact-draft"));
      });
    });
  }

  function setUpImpact(form) {
    var button = document.getElementById("impact-button");
    if (!button) return;
    button.addEventListener("click", function () {
      var section = document.getElementById("impact");
      var bar = document.getElementById("impact-bar");
      var count = document.getElementById("impact-count");
      section.hidden = false;
      button.disabled = true;
      bar.value = 0;
      count.textContent = "준비 중…";
      var source = form.querySelector("textarea[name=source]").value;
      fetch(button.dataset.impactUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken()},
        body: JSON.stringify({source: source})
      }).then(function (response) {
        if (!response.ok) return response.json().then(function (body) {
          throw new Error(body.message_ko || body.message);
        });
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var pending = "";
        function handle(line) {
          if (!line) return;
          var event = JSON.parse(line);
          if (event.total) {
            bar.max = event.total;
            bar.value = event.done;
            count.textContent = event.done + " / " + event.total;
          } else if (event.report) {
            count.textContent = "완료";
            renderImpact(event.report);
          } else if (event.error) {
            throw new Error(event.error);
          }
        }
        function pump() {
          return reader.read().then(function (chunk) {
            pending += decoder.decode(chunk.value || new Uint8Array(), {stream: !chunk.done});
            var lines = pending.split("\n");
            pending = lines.pop();
            lines.forEach(handle);
            if (chunk.done) { handle(pending); return; }
            return pump();
          });
        }
        return pump();
      }).catch(function (error) {
        count.textContent = "영향 미리보기 실패: " + error.message;
      }).then(function () {
        button.disabled = false;
      });
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
    if (form) { setUpPreview(form); setUpImpact(form); }
    setUpConfirmations();
  });
})();
