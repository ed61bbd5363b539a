// The agents' console: asks /api/suggest and shows the result without a page reload.
//
// Safety rules of this file: every piece of data goes into the page through textContent or
// attributes set one by one — never innerHTML — because inquiries are customer text. The one
// exception is article HTML from /api/articles, sanitised on the server (web/articles.py) and
// placed only inside an .article-html container. No inline script or handler exists, so a
// Content-Security-Policy of script-src 'self' holds.
"use strict";

(function () {
  const FLAGS = {
    off_platform: { name: "외부 거래 유도", level: "danger" },
    fraud: { name: "사기 의심", level: "danger" },
    counterfeit: { name: "가품 의심", level: "danger" },
    legal_threat: { name: "법적 대응 언급", level: "danger" },
    personal_data: { name: "개인정보 포함", level: "caution" },
    outage: { name: "서비스 장애", level: "caution" },
    repeated_contact: { name: "반복 문의", level: "caution" },
  };
  const AUDIENCES = { buyer: "구매자", seller: "판매자", unknown: "미확인" };
  const URGENCIES = { normal: ["보통", ""], high: ["높음", "caution"], critical: ["긴급", "danger"] };
  const SENTIMENTS = { calm: "차분함", frustrated: "답답함", angry: "화남" };
  const CHANNELS = { chat: "채팅", board: "게시판", phone: "전화" };
  const VERDICTS = { used: "그대로 사용", edited: "수정 후 사용", rejected: "사용 안 함" };
  const TIMINGS = { embed_ms: "임베딩", dense_ms: "벡터 검색", bm25_ms: "키워드 검색",
    fuse_ms: "결합", analyze_ms: "분석", compose_ms: "초안 작성", llm_ms: "LLM" };
  const PLACEHOLDER = /\{[^{}\n]+\}/g;

  const $ = (id) => document.getElementById(id);
  // One suggestion at a time: what the agent sees and has decided about it.
  let state = null;

  // -- DOM helpers: text only -------------------------------------------------------------------

  function el(tag, options, children) {
    const node = document.createElement(tag);
    const opts = options || {};
    if (opts.className) node.className = opts.className;
    if (opts.text !== undefined) node.textContent = opts.text;
    for (const [name, value] of Object.entries(opts.attrs || {})) node.setAttribute(name, value);
    if (opts.onClick) node.addEventListener("click", opts.onClick);
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  function button(label, onClick, className) {
    return el("button", { text: label, className: className || "", attrs: { type: "button" },
      onClick });
  }

  function articleUrl(articleId) {
    return "/articles/" + encodeURIComponent(articleId);
  }

  function toast(message, kind) {
    const box = $("toast");
    box.textContent = message;
    box.className = "toast " + (kind || "");
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 2500);
  }

  // -- talking to the API ----------------------------------------------------------------------

  function jsonHeaders() {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    // A signed-in session's writes to /api need the page's CSRF token (web/access.py): 403 without.
    const token = document.querySelector('meta[name="csrf-token"]');
    if (token) headers["X-CSRF-Token"] = token.getAttribute("content");
    return headers;
  }

  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST", headers: jsonHeaders(), body: JSON.stringify(body), credentials: "same-origin",
    });
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    if (!response.ok) {
      const message = (data && data.message_ko) || `요청이 실패했습니다 (HTTP ${response.status}).`;
      throw new Error(message);
    }
    return data;
  }

  function formBody() {
    const form = $("suggest-form");
    const body = { inquiry: $("inquiry").value, channel: form.elements.channel.value || "chat" };
    const audience = form.elements.audience.value;
    if (audience) body.audience = audience;
    const name = $("customer-name").value.trim();
    const order = $("order-id").value.trim();
    if (name) body.customer_name = name;
    if (order) body.order_id = order;
    const asOf = $("as-of") ? $("as-of").value : "";
    if (asOf) body.as_of = asOf;
    return body;
  }

  async function submitInquiry(event) {
    if (event) event.preventDefault();
    const body = formBody();
    const error = $("form-error");
    error.hidden = true;
    if (!body.inquiry.trim()) {
      error.textContent = "고객 문의를 입력해 주세요.";
      error.hidden = false;
      $("inquiry").focus();
      return;
    }
    const submit = $("submit");
    submit.disabled = true;
    submit.textContent = "분석 중…";
    try {
      await requestSuggestion(body);
    } finally {
      submit.disabled = false;
      submit.textContent = "답변 추천 받기";
    }
  }

  // Ask for a suggestion and show it; a failure is shown above the form.
  async function requestSuggestion(body) {
    const error = $("form-error");
    error.hidden = true;
    document.body.setAttribute("aria-busy", "true");
    try {
      render(await postJson("/api/suggest", body), body);
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    } finally {
      document.body.removeAttribute("aria-busy");
    }
  }

  async function sendFeedback(extra) {
    return postJson("/api/feedback", { suggestion_id: state.data.suggestion_id, ...extra });
  }

  // -- rendering a suggestion ------------------------------------------------------------------

  function render(data, request) {
    const types = data.analysis.inquiry_types.map((t) => t.category);
    state = { data, request, inquiry: request.inquiry.normalize("NFC"), types: [...types],
      originalTypes: types, verdict: null, passages: passageMap(data) };
    $("placeholder").hidden = true;
    $("result").hidden = false;
    // Agents quote this id to support; the browser tests find the stored row by it too.
    $("result").dataset.suggestionId = data.suggestion_id;
    renderAnalysis(data.analysis);
    renderGrounded(data);
    // With no grounded article the types come from the nearest passages: a guess to check.
    if ($("not-grounded").hidden === false) $("types-status").textContent = "추정 — 근거 문서 없음";
    renderFlags(data.analysis);
    renderDraft(data.draft);
    renderCitations(data.draft.citations);
    renderAlternatives(data.alternatives || [], data.chosen_by_agent);
    renderAnticipated(data.anticipated);
    renderInternal(data.internal_notes, data.draft.grounded, data.scheduled_changes || []);
    renderTimings(data.timings_ms);
    closeArticle();
    // Articles fetched for an earlier suggestion may have been republished since: this one's
    // citations name the versions just served, so fetch the articles again.
    articleCache.clear();
  }

  function passageMap(data) {
    const map = new Map();
    for (const p of [...data.passages, ...data.internal_notes]) map.set(p.chunk_id, p);
    return map;
  }

  function renderAnalysis(analysis) {
    $("analysis").hidden = false;
    const who = AUDIENCES[analysis.audience] || analysis.audience;
    $("audience").textContent = analysis.audience_source === "inferred" && analysis.audience !== "unknown"
      ? who + " (추정)" : who;
    const [urgency, level] = URGENCIES[analysis.urgency] || [analysis.urgency, ""];
    $("urgency").replaceChildren(el("span", { className: "badge " + level, text: urgency }));
    $("sentiment").textContent = SENTIMENTS[analysis.sentiment] || analysis.sentiment;
    renderTypeChips();
    $("types-status").textContent = "";
  }

  function renderGrounded(data) {
    const grounded = data.draft.grounded && data.retrieval.grounded !== false;
    $("not-grounded").hidden = grounded;
    $("not-grounded-reason").textContent = grounded ? "" : "사유: " + groundingReason(data);
  }

  // `reason` is English (for logs); agents read `reason_ko`.
  function groundingReason(data) {
    return data.draft.reason_ko || data.draft.reason || "";
  }

  // -- inquiry types: editable chips, corrections go to /api/feedback -----------------------------

  function renderTypeChips() {
    const chips = state.types.map((category) => el("span", { className: "chip type-chip" }, [
      el("span", { text: category }),
      el("button", { className: "chip-remove", text: "✕",
        attrs: { type: "button", "aria-label": category + " 유형 빼기" },
        onClick: () => changeTypes(state.types.filter((t) => t !== category)) }),
    ]));
    if (!chips.length) chips.push(el("span", { className: "muted", text: "분류 없음 — 유형을 추가해 주세요" }));
    $("type-chips").replaceChildren(...chips);
    $("types-save").disabled = !typesChanged();
  }

  function typesChanged() {
    return state.types.join("\n") !== state.originalTypes.join("\n");
  }

  function changeTypes(types) {
    state.types = types;
    $("types-status").textContent = typesChanged() ? "저장하지 않은 변경" : "";
    renderTypeChips();
  }

  function addType(event) {
    const category = event.target.value;
    event.target.value = "";
    if (category && state && !state.types.includes(category)) changeTypes([...state.types, category]);
  }

  async function saveTypes() {
    if (!state.types.length) {
      $("types-status").textContent = "유형을 하나 이상 골라 주세요.";
      return;
    }
    // The API needs a verdict: repeat the agent's verdict if given, else send 'used' without
    // final_text, which the insights page reads as a correction only (suggester/records/insights.py).
    const verdict = state.verdict || { verdict: "used", final_text: null };
    try {
      await sendFeedback({ ...verdict, corrected_types: state.types });
      state.originalTypes = [...state.types];
      renderTypeChips();
      $("types-status").textContent = "유형 수정을 저장했습니다.";
    } catch (failure) {
      $("types-status").textContent = failure.message;
    }
  }

  // -- risk flags: evidence highlighted in the inquiry, escalation rule shown --------------------

  function renderFlags(analysis) {
    const section = $("flags");
    const flags = analysis.risk_flags;
    section.hidden = !flags.length;
    if (!flags.length) { section.replaceChildren(); return; }
    const spans = flags.flatMap((f) => f.evidence);
    const boxes = flags.map(flagBox);
    const quote = el("blockquote", { className: "evidence-quote" }, [highlighted(state.inquiry, spans)]);
    section.replaceChildren(...boxes, el("div", { className: "evidence" }, [
      el("span", { className: "field-label", text: "문의 원문 (위험 신호 표시)" }), quote]));
  }

  function flagBox(flag) {
    const info = FLAGS[flag.name] || { name: flag.name, level: "caution" };
    const evidence = flag.evidence.map((span) => el("mark", { text: span.text }));
    const box = el("div", { className: "flag flag-" + info.level, attrs: { "data-flag": flag.name } }, [
      el("div", { className: "flag-head" }, [
        el("strong", { text: (info.level === "danger" ? "⚠ " : "") + info.name }),
        el("span", { className: "flag-evidence" }, [document.createTextNode("근거: "), ...joinNodes(evidence, ", ")]),
      ]),
    ]);
    if (flag.escalation) {
      box.append(el("div", { className: "escalation" }, [
        el("span", { className: "internal-label", text: "에스컬레이션 규칙 · 내부 전용" }),
        el("p", { className: "pre", text: flag.escalation.text }),
        button("규칙 문서 보기", () => openArticle(flag.escalation.article_id, "에스컬레이션"), "link"),
      ]));
    } else {
      box.append(el("p", { className: "muted small", text: "이 신호의 에스컬레이션 규칙 문서가 아직 없습니다. 팀 리더에게 확인해 주세요." }));
    }
    return box;
  }

  function joinNodes(nodes, separator) {
    return nodes.flatMap((node, i) => (i ? [document.createTextNode(separator), node] : [node]));
  }

  // Spans count Unicode code points of the NFC inquiry (Python indices), hence Array.from.
  function highlighted(text, spans) {
    const chars = Array.from(text);
    const sorted = [...spans].sort((a, b) => a.start - b.start);
    const fragment = document.createDocumentFragment();
    let position = 0;
    for (const span of sorted) {
      const start = Math.max(span.start, position);
      if (span.end <= start) continue;
      fragment.append(chars.slice(position, start).join(""));
      fragment.append(el("mark", { text: chars.slice(start, span.end).join("") }));
      position = span.end;
    }
    fragment.append(chars.slice(position).join(""));
    return fragment;
  }

  // -- the draft: editable, copyable, with verdict buttons --------------------------------------

  function renderDraft(draft) {
    $("draft-channel").textContent = "· " + (CHANNELS[draft.channel] || draft.channel);
    $("draft-text").value = draft.text;
    const unfilled = draft.unfilled_placeholders || [];
    $("unfilled").hidden = !unfilled.length;
    $("unfilled").textContent = unfilled.length
      ? "보내기 전에 채워 주세요: " + unfilled.join(", ") : "";
    $("verdict-status").textContent = "";
    for (const b of document.querySelectorAll("[data-verdict]")) b.classList.remove("chosen");
    renderCitedText(draft.cited_text);
    renderDrafter(draft);
    renderOptional(draft.optional_sentences || []);
  }

  // Relevant sentences over the channel's length budget: each with its source, one click adds
  // it to the draft (and its citation to the chips, so the agent can check it).
  function renderOptional(optional) {
    $("optional-sentences").hidden = !optional.length;
    const items = optional.map((item) => {
      const add = button("추가", () => addOptional(item, add), "small-button");
      add.setAttribute("aria-label", "초안에 추가: " + item.text);
      return el("li", { className: "optional-sentence" }, [
        el("p", { text: item.text }),
        el("div", { className: "optional-actions" }, [
          add,
          button(`[${item.citation.number}] ${item.citation.title}`,
            () => openArticle(item.citation.article_id, item.citation.section), "link"),
        ]),
      ]);
    });
    $("optional-list").replaceChildren(...items);
  }

  function addOptional(item, addButton) {
    const box = $("draft-text");
    box.value = box.value.replace(/\s+$/, "") + (box.value.trim() ? " " : "") + item.text;
    addButton.disabled = true;
    addButton.textContent = "추가됨";
    const citations = state.data.draft.citations;
    if (!citations.some((c) => c.chunk_id === item.citation.chunk_id)) {
      citations.push(item.citation);
      renderCitations(citations);
    }
  }

  // Who wrote the draft: the LLM (checked against the passages) or the composer, and why the
  // LLM's draft was not used. Nothing shows when no LLM is configured.
  function renderDrafter(draft) {
    const llm = draft.llm;
    const badge = $("draft-source");
    const note = $("llm-fallback");
    badge.hidden = !llm || llm.status === "skipped";
    note.hidden = !llm || llm.status !== "rejected";
    if (!llm) return;
    badge.className = draft.source === "llm" ? "badge" : "badge caution";
    badge.textContent = draft.source === "llm" ? "LLM 작성 · 검증 통과" : "기본 초안";
    badge.title = llm.model ? "모델: " + llm.model : "";
    note.textContent = llm.status === "rejected"
      ? "LLM 초안을 쓰지 않았습니다: " + (llm.reason_ko || llm.reason) +
        (llm.detail ? " (" + llm.detail + ")" : "")
      : "";
  }

  function renderCitedText(citedText) {
    const parts = citedText.split(/\[(\d+)\]/);
    const nodes = parts.map((part, i) => (i % 2
      ? el("button", { className: "ref", text: part, attrs: { type: "button", "aria-label": "근거 " + part },
        onClick: () => toggleCitation(Number(part)) })
      : document.createTextNode(part)));
    $("cited-text").replaceChildren(...nodes);
  }

  function leftoverPlaceholders(text) {
    return [...new Set(text.match(PLACEHOLDER) || [])];
  }

  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (error) { /* fall back below: permission denied or an old browser */ }
    const scratch = el("textarea", { className: "offscreen", attrs: { readonly: "" } });
    scratch.value = text;
    document.body.append(scratch);
    scratch.select();
    let copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    scratch.remove();
    return copied;
  }

  async function copyWithNotice(text, what) {
    const copied = await copyText(text);
    const leftover = leftoverPlaceholders(text);
    if (!copied) toast("복사하지 못했습니다. 텍스트를 직접 선택해 복사해 주세요.", "error");
    else if (leftover.length) toast(what + " 복사함 — 채우지 않은 항목: " + leftover.join(", "), "caution");
    else toast(what + "을 복사했습니다.", "ok");
    return copied;
  }

  function copyDraft() {
    if (state) copyWithNotice($("draft-text").value, "초안");
  }

  async function recordVerdict(verdict) {
    if (!state) return;
    const current = $("draft-text").value;
    if (verdict === "edited" && current === state.data.draft.text) {
      $("verdict-status").textContent = "초안을 고친 다음 눌러 주세요.";
      $("draft-text").focus();
      return;
    }
    if (verdict === "used" && current !== state.data.draft.text) {
      $("verdict-status").textContent = "초안을 고쳤다면 '수정 후 사용'을 눌러 주세요.";
      return;
    }
    const finalText = verdict === "used" ? state.data.draft.text : current;
    const body = { verdict, final_text: finalText };
    if (typesChanged()) body.corrected_types = state.types;
    try {
      await sendFeedback(body);
    } catch (failure) {
      $("verdict-status").textContent = failure.message;
      return;
    }
    state.verdict = { verdict, final_text: finalText };
    if (body.corrected_types) { state.originalTypes = [...state.types]; renderTypeChips(); }
    for (const b of document.querySelectorAll("[data-verdict]")) {
      b.classList.toggle("chosen", b.dataset.verdict === verdict);
    }
    $("verdict-status").textContent = "기록됨: " + VERDICTS[verdict];
    if (verdict !== "rejected") await copyWithNotice(finalText, "답변");
  }

  // -- citations: numbered chips that open the passage and the article ---------------------------

  function renderCitations(citations) {
    $("citations-panel").hidden = !citations.length;
    const chips = citations.map((c) => el("button", {
      className: "chip citation-chip", attrs: { type: "button", "data-number": String(c.number),
        "data-article": c.article_id, "aria-expanded": "false" },
      onClick: () => toggleCitation(c.number),
    }, [el("span", { className: "num", text: String(c.number) }),
      el("span", { text: `${c.title} · ${c.section}` }), el("span", { className: "muted", text: " v" + c.version })]));
    $("citation-chips").replaceChildren(...chips);
    $("citation-detail").replaceChildren();
  }

  function toggleCitation(number) {
    const citation = state.data.draft.citations.find((c) => c.number === number);
    const chip = document.querySelector(`.citation-chip[data-number="${number}"]`);
    const open = chip && chip.getAttribute("aria-expanded") === "true";
    for (const other of document.querySelectorAll(".citation-chip")) other.setAttribute("aria-expanded", "false");
    if (!citation || open) { $("citation-detail").replaceChildren(); return; }
    chip.setAttribute("aria-expanded", "true");
    $("citation-detail").replaceChildren(citationDetail(citation));
    $("citations-panel").scrollIntoView({ block: "nearest" });
  }

  function citationDetail(citation) {
    const passage = state.passages.get(citation.chunk_id);
    const body = el("div", { className: "passage" });
    if (passage) body.append(el("p", { className: "pre", text: passage.text }));
    else loadSectionInto(body, citation);
    return el("div", { className: "citation-detail" }, [
      el("div", { className: "citation-title" }, [
        el("strong", { text: `[${citation.number}] ${citation.title}` }),
        el("span", { className: "muted", text: ` › ${citation.section} · v${citation.version}` })]),
      body,
      el("div", { className: "row" }, [
        button("문서 전체 보기", () => openArticle(citation.article_id, citation.section), "link"),
        el("a", { text: "새 탭에서 열기", attrs: { href: articleUrl(citation.article_id), target: "_blank", rel: "noopener" } }),
      ]),
    ]);
  }

  async function loadSectionInto(container, citation) {
    container.append(el("p", { className: "muted", text: "불러오는 중…" }));
    try {
      const article = await fetchArticle(citation.article_id);
      const section = article.sections.find((s) => s.path.join(" > ") === citation.section);
      container.replaceChildren(section ? articleHtml(section.html)
        : el("p", { className: "muted", text: "해당 절을 찾지 못했습니다. 문서 전체 보기를 눌러 주세요." }));
    } catch (failure) {
      container.replaceChildren(el("p", { className: "error", text: failure.message }));
    }
  }

  // -- other candidate articles: the agent may draft from one instead --------------------------

  function renderAlternatives(alternatives, chosen) {
    $("alternatives-panel").hidden = !alternatives.length;
    $("chosen-note").hidden = !chosen;
    $("alternatives").replaceChildren(...alternatives.map((item) => el("li", { className: "alternative" }, [
      button(item.title, () => openArticle(item.article_id, item.section), "link"),
      el("span", { className: "muted", text: " · " + item.category + " " }),
      button("이 문서로 초안 작성", () => draftFrom(item.article_id), "small-button"),
    ])));
  }

  function draftFrom(articleId) {
    return requestSuggestion({ ...state.request, article_id: articleId });
  }

  // -- anticipated follow-ups and internal notes ------------------------------------------------

  function renderAnticipated(items) {
    $("anticipated-panel").hidden = !items.length;
    $("anticipated").replaceChildren(...items.map((item) => el("li", { className: "follow-up" }, [
      el("p", { className: "question", text: "Q. " + item.question }),
      el("p", { className: "answer pre", text: item.answer }),
      el("div", { className: "row" }, [
        button("답변 복사", () => copyWithNotice(item.answer, "답변"), "small-button"),
        button(`근거: ${item.citation.title}`, () => openArticle(item.citation.article_id, item.citation.section), "link"),
      ]),
    ])));
  }

  function renderInternal(notes, grounded, scheduled) {
    $("internal").hidden = !notes.length && !scheduled.length;
    // A cited rule that a published successor replaces soon: the agent may need to say so.
    const upcoming = scheduled.map((change) => el("p", { className: "note scheduled-change", text: change.note }));
    // Without a confident match these memos belong to the nearest articles, maybe not this case.
    const caveat = grounded ? []
      : [el("p", { className: "note", text: "근거가 확실하지 않은 검색 결과의 메모입니다. 이 문의에 맞는지 확인하세요." })];
    $("internal-notes").replaceChildren(...upcoming, ...caveat, ...notes.map((note) => el("div", { className: "internal-note" }, [
      el("div", { className: "note-title" }, [
        button(`${note.title} › ${note.section}`, () => openArticle(note.article_id, note.section), "link")]),
      el("p", { className: "pre", text: note.text }),
    ])));
  }

  function renderTimings(timings) {
    const parts = Object.entries(timings).filter(([key]) => key !== "total_ms")
      .map(([key, ms]) => `${TIMINGS[key] || key} ${Number(ms).toFixed(1)}`);
    $("timings").textContent = `처리 시간 ${Number(timings.total_ms || 0).toFixed(0)}ms (${parts.join(" · ")})`;
  }

  // -- the article side panel -------------------------------------------------------------------

  const articleCache = new Map();

  async function fetchArticle(articleId) {
    if (!articleCache.has(articleId)) {
      const response = await fetch("/api/articles/" + encodeURIComponent(articleId), { headers: { Accept: "application/json" } });
      const data = await response.json().catch(() => null);
      if (!response.ok) throw new Error((data && data.message_ko) || "문서를 불러오지 못했습니다.");
      articleCache.set(articleId, data);
    }
    return articleCache.get(articleId);
  }

  // The server sanitised this HTML (markdown-it, html=False); it goes only into its own box.
  function articleHtml(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return el("div", { className: "article-html" }, [template.content]);
  }

  function articleSection(section, focus) {
    const heading = el("h" + Math.min(section.level + 1, 5), { className: "section-title", text: section.title }, [
      section.internal ? el("span", { className: "badge internal-badge", text: "내부 전용 · 고객 안내 금지" }) : null]);
    const focused = focus && (section.path.join(" > ") === focus || section.title === focus);
    return el("section", { className: "article-section" + (section.internal ? " internal" : "") + (focused ? " focused" : "") },
      [heading, articleHtml(section.html)]);
  }

  async function openArticle(articleId, focus) {
    const panel = $("article-panel");
    panel.hidden = false;
    $("article-panel-title").textContent = "불러오는 중…";
    $("article-panel-meta").replaceChildren();
    $("article-panel-body").replaceChildren();
    $("article-panel-link").setAttribute("href", articleUrl(articleId));
    try {
      const article = await fetchArticle(articleId);
      $("article-panel-title").textContent = article.title;
      $("article-panel-meta").replaceChildren(el("span", { className: "badge", text: article.category }),
        el("span", { text: ` ${AUDIENCES[article.audience] || "공통"} · v${article.version}` +
          (article.effective_from ? ` · 시행 ${article.effective_from}` : "") }));
      const sections = article.sections.map((s) => articleSection(s, focus));
      $("article-panel-body").replaceChildren(...sections);
      const focused = $("article-panel-body").querySelector(".focused");
      if (focused) focused.scrollIntoView({ block: "start" });
    } catch (failure) {
      $("article-panel-title").textContent = failure.message;
    }
    $("article-panel-close").focus({ preventScroll: true });
  }

  function closeArticle() {
    $("article-panel").hidden = true;
  }

  // -- wiring -----------------------------------------------------------------------------------

  function onKey(event) {
    const ctrl = event.ctrlKey || event.metaKey;
    if (ctrl && event.key === "Enter" && event.target.closest("#suggest-form")) {
      event.preventDefault();
      submitInquiry();
    } else if (ctrl && event.shiftKey && (event.key === "C" || event.key === "c")) {
      event.preventDefault();
      copyDraft();
    } else if (event.key === "Escape" && !$("article-panel").hidden) {
      closeArticle();
    }
  }

  function init() {
    $("suggest-form").addEventListener("submit", submitInquiry);
    $("copy-draft").addEventListener("click", copyDraft);
    $("type-add").addEventListener("change", addType);
    $("types-save").addEventListener("click", saveTypes);
    $("article-panel-close").addEventListener("click", closeArticle);
    for (const b of document.querySelectorAll("[data-verdict]")) {
      b.addEventListener("click", () => recordVerdict(b.dataset.verdict));
    }
    document.addEventListener("keydown", onKey);
    $("inquiry").focus();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
