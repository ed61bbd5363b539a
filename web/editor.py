"""The editors' pages under /editor: list, edit with live preview, new, history, diff, restore.

Editors and admins only (agents get 403, anonymous users the login page). Every write goes
through `suggester.publish.Publisher`, which lints, records history, writes atomically and
re-indexes the article; these views only collect the form and show the outcome.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import escape

from suggester.errors import ArticleError, SearchIndexError, SuggesterError
from suggester.evaluation.impact import preview_impact
from suggester.knowledge.articles import (
    ARTICLE_ID,
    ARTICLE_TYPES,
    AUDIENCES,
    MAX_FILE_BYTES,
    STATUSES,
    TAXONOMY,
    Article,
    check_markdown_size,
    discover,
    find_article_path,
    parse_article,
    read_article,
)
from suggester.knowledge.consistency import CONTRADICTION, ConsistencyChecker
from suggester.knowledge.lint import Finding
from suggester.publish import (
    EditConflict,
    LintFailed,
    Publisher,
    PublishError,
    SaveResult,
    source_hash,
)
from suggester.records.store import Store, UnknownArticleVersion
from suggester.search.index import Indexer
from web.articles import render_markdown
from web.auth import current_user, refusal

bp = Blueprint("editor", __name__, url_prefix="/editor")

MAX_ID_CHARS = 80
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON's "\ud800": no UTF-8 file can hold it
MAX_SOURCE_CHARS = MAX_FILE_BYTES  # a character is at least a byte: every valid article fits
# A form-encoded Korean character takes 9 bytes, so the API's 64 KB body limit would refuse an
# article of ~7,000 characters; editors get room for the largest article the parser accepts.
EDITOR_MAX_BODY = 10 * MAX_FILE_BYTES
SIMILAR_PER_QUESTION = 3
DIFF_WRAP = 40  # characters per diff line: Korean is double width, two columns fit a laptop
ACTION_KOREAN = {"publish": "게시", "draft": "임시 저장", "archive": "보관", "restore": "복원"}
STATUS_KOREAN = {"published": "게시됨", "draft": "임시", "archived": "보관됨"}
TYPE_KOREAN = {"policy": "정책", "faq": "FAQ", "exception": "예외 사례"}
AUDIENCE_KOREAN = {"buyer": "구매자", "seller": "판매자", "all": "전체"}


@bp.before_app_request
def allow_whole_articles() -> None:
    # An app-wide hook, so it runs before the CSRF check first reads the form.
    if request.blueprint == "editor":
        request.max_content_length = EDITOR_MAX_BODY
        request.max_form_memory_size = EDITOR_MAX_BODY


@bp.before_request
def editors_only():
    # One check for the whole blueprint, so no editor route can forget it.
    return refusal("editor")


@bp.context_processor
def labels() -> dict[str, Any]:
    return {"action_korean": ACTION_KOREAN, "status_korean": STATUS_KOREAN,
            "type_korean": TYPE_KOREAN, "audience_korean": AUDIENCE_KOREAN}


def _store() -> Store:
    return current_app.extensions["suggester.store"]


def _kb_dir() -> Path:
    return current_app.extensions["suggester.settings"].kb_dir


def publisher() -> Publisher:
    """The app's one Publisher, sharing the retriever's models for re-indexing."""
    extensions = current_app.extensions
    if "suggester.publisher" not in extensions:
        settings = extensions["suggester.settings"]
        retriever = extensions["suggester.service"].retriever
        indexer = Indexer(settings, embedder=retriever.embedder, tokenizer=retriever.tokenizer)
        extensions["suggester.publisher"] = Publisher(
            settings, _store(), indexer=indexer, replica=extensions.get("suggester.replica"))
    return extensions["suggester.publisher"]


def _checker() -> ConsistencyChecker:
    """The app's consistency checker, on the retriever's Kiwi (it caches articles' facts)."""
    extensions = current_app.extensions
    if "suggester.consistency" not in extensions:
        tokenizer = extensions["suggester.service"].retriever.tokenizer
        extensions["suggester.consistency"] = ConsistencyChecker(tokenizer.topic_words)
    return extensions["suggester.consistency"]


def _author() -> str:
    user = current_user()
    assert user is not None  # editors_only let the request through
    return user.username


# -- list ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Row:
    id: str
    path: Path
    article: Article | None
    error: str
    modified: dt.datetime
    last_change: Any

    @property
    def overdue(self) -> bool:
        review_by = self.article.review_by if self.article else None
        return bool(review_by and review_by < dt.date.today())


def _rows() -> list[Row]:
    rows = []
    for path in discover(_kb_dir()):
        try:
            article, error = read_article(path), ""
        except ArticleError as exc:
            article, error = None, str(exc)
        history = _store().article_history(path.stem)
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime)
        rows.append(Row(id=path.stem, path=path, article=article, error=error,
                        modified=modified, last_change=history[-1] if history else None))
    return rows


def _matches(row: Row, filters: dict[str, str]) -> bool:
    article = row.article
    if article is None:  # unreadable files always show, so they get fixed
        return True
    for key in ("type", "category", "audience", "status"):
        if filters[key] and getattr(article, key) != filters[key]:
            return False
    if filters["overdue"] and not row.overdue:
        return False
    query = filters["q"].lower()
    return not query or query in article.id.lower() or query in article.title.lower()


@bp.get("/")
def index():
    filters = {key: request.args.get(key, "").strip()
               for key in ("type", "category", "audience", "status", "overdue", "q")}
    every = _rows()
    rows = [row for row in every if _matches(row, filters)]
    return render_template("editor_list.html", rows=rows, filters=filters,
                           types=ARTICLE_TYPES, categories=TAXONOMY, audiences=AUDIENCES,
                           statuses=STATUSES, switchovers=_upcoming_switchovers(every))


def _upcoming_switchovers(rows: list[Row]) -> list[dict[str, Any]]:
    """Published successors not yet in effect: the day each takes over from the old article."""
    today = dt.date.today()
    titles = {row.id: row.article.title for row in rows if row.article}
    upcoming = [row.article for row in rows if row.article and row.article.supersedes
                and row.article.status == "published" and row.article.effective_from
                and row.article.effective_from > today]
    return sorted(({"day": a.effective_from, "new_id": a.id, "new_title": a.title,
                    "old_id": a.supersedes, "old_title": titles.get(a.supersedes, a.supersedes)}
                   for a in upcoming), key=lambda s: (s["day"], s["new_id"]))


# -- edit, preview, save --------------------------------------------------------------------


@bp.get("/<article_id>/edit")
def edit(article_id: str):
    path = _path_or_none(article_id)
    if path is None:
        return _not_found(article_id)
    pending = publisher().pending_draft(article_id)
    use_draft = pending is not None and request.args.get("from") != "file"
    source = pending.source if use_draft and pending else \
        path.read_text(encoding="utf-8", errors="replace")
    return _edit_page(article_id, source, base=_file_hash(path), pending=pending,
                      showing_draft=use_draft)


def _edit_page(article_id: str, source: str, *, base: str, status: int = 200,
               errors: list[Finding] | None = None, pending: Any = None,
               showing_draft: bool = False) -> Any:
    article = _parse_or_none(source, article_id)
    others = publisher().others()  # read once for lint and the comparison table
    findings = errors if errors is not None else publisher().check(
        source, article_id=article_id, others=others)
    return render_template(
        "editor_edit.html", article_id=article_id, source=source, base=base,
        article=article, preview=_preview_html(source), findings=_findings_view(findings),
        conflicts=_conflicts_view(article, others),
        file_status=_file_status(article_id), pending=pending, showing_draft=showing_draft,
        helper=_similar_answers(article) if _is_draft(article, showing_draft) else None,
    ), status


@bp.post("/<article_id>/save")
def save(article_id: str):
    if _path_or_none(article_id) is None:
        return _not_found(article_id)
    source = request.form.get("source", "")
    base = request.form.get("base") or None
    action = request.form.get("action", "draft")
    if action not in ("draft", "publish"):
        return _edit_page(article_id, source, base=base or "", status=400)
    save_as = publisher().publish if action == "publish" else publisher().save_draft
    try:
        result = save_as(source, author=_author(), article_id=article_id, base=base)
    except PublishError as exc:
        return _failed(article_id, source, base, exc)
    _flash_result(result)
    return redirect(url_for("editor.edit", article_id=article_id))


@bp.post("/<article_id>/archive")
def archive(article_id: str):
    try:
        result = publisher().archive(article_id, author=_author(),
                                     base=request.form.get("base") or None)
    except PublishError as exc:
        flash(f"{exc.korean} ({exc.english})", "error")
        return redirect(url_for("editor.edit", article_id=article_id))
    _flash_result(result)
    return redirect(url_for("editor.edit", article_id=article_id))


def _request_body() -> Any:
    """The request's JSON object or form; empty when it is neither (or nested too deep)."""
    try:
        body: Any = request.get_json(silent=True) if request.is_json else request.form
    except RecursionError:  # "[[[[…" deeper than Python's JSON decoder goes
        body = None
    return body if hasattr(body, "get") else {}


@bp.post("/preview")
def preview():
    """Rendered HTML and lint findings of the source being edited (for the live preview)."""
    body = _request_body()
    source, article_id = body.get("source"), body.get("article_id")
    if not isinstance(source, str) or len(source) > MAX_SOURCE_CHARS \
            or _LONE_SURROGATE.search(source):
        return jsonify(error="invalid_source",
                       message=f"send the article source as 'source': UTF-8 text of at most "
                               f"{MAX_SOURCE_CHARS:,} characters",
                       message_ko=f"문서 내용(source)을 {MAX_SOURCE_CHARS:,}자 이하의 텍스트로 "
                                  "보내 주세요."), 400
    if article_id not in (None, "") and not (isinstance(article_id, str) and _is_id(article_id)):
        return jsonify(error="invalid_article_id", message="article_id must be an article's id",
                       message_ko="문서 ID(article_id) 형식이 올바르지 않습니다."), 400
    others = publisher().others()  # read once for lint and the comparison table
    findings = publisher().check(source, article_id=article_id or None, others=others)
    article = _parse_or_none(source, article_id) if article_id else None
    return jsonify(html=_preview_html(source), findings=_findings_view(findings),
                   conflicts=_conflicts_view(article, others))


@bp.post("/<article_id>/impact")
def impact(article_id: str):
    """Stream the impact preview as JSON lines: progress, then the report (or an error)."""
    if _path_or_none(article_id) is None:
        return _not_found(article_id)
    source = _request_body().get("source")
    if not isinstance(source, str) or len(source) > MAX_SOURCE_CHARS \
            or _LONE_SURROGATE.search(source) or _parse_or_none(source, article_id) is None:
        return jsonify(error="invalid_source",
                       message="send the article source as 'source': an article that parses",
                       message_ko="문서 내용(source)이 올바른 문서가 아닙니다. 게시 전 검사의 "
                                  "오류를 먼저 고치세요."), 400
    settings = current_app.extensions["suggester.settings"]
    models = current_app.extensions["suggester.service"].retriever
    store = _store()
    events: queue.Queue[dict[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            report = preview_impact(settings, source, article_id=article_id, models=models,
                                    store=store,
                                    progress=lambda done, total: events.put(
                                        {"done": done, "total": total}))
            events.put({"report": report.to_dict()})
        except (SuggesterError, ArticleError, OSError) as exc:
            events.put({"error": str(exc)})

    threading.Thread(target=work, name=f"impact-{article_id}", daemon=True).start()

    def lines():
        while True:
            event = events.get()
            yield json.dumps(event, ensure_ascii=False) + "\n"
            if "done" not in event:
                return

    return Response(lines(), mimetype="application/x-ndjson")


def _failed(article_id: str, source: str, base: str | None, exc: PublishError) -> Any:
    errors = exc.findings if isinstance(exc, LintFailed) else None
    flash(f"{exc.korean} ({exc.english})", "error")
    status = 422 if isinstance(exc, LintFailed) else 409 if isinstance(exc, EditConflict) \
        else 503
    return _edit_page(article_id, source, base=base or "", status=status, errors=errors)


def _flash_result(result: SaveResult) -> None:
    action = ACTION_KOREAN[result.action]
    if result.action == "draft" and not result.file_written:
        flash(f"임시 저장했습니다. 게시본(버전 {result.version})은 그대로 서비스됩니다.", "ok")
    else:
        flash(f"{action}했습니다 (버전 {result.version}).", "ok")
    if result.index_error:
        flash(result.index_error, "error")


# -- new article ----------------------------------------------------------------------------


@bp.get("/new")
def new():
    return _new_page({"type": request.args.get("type", "faq"), "owner": "cx-policy"})


@bp.post("/new")
def create():
    form = {key: request.form.get(key, "").strip()
            for key in ("type", "id", "title", "category", "audience", "owner")}
    problem = _new_article_problem(form)
    if problem:
        return _new_page(form, problem, 422)
    try:
        publisher().save_draft(_skeleton(form), author=_author())
    except PublishError as exc:
        return _new_page(form, exc.korean + " " + _first_error(exc), 422)
    flash("새 문서를 임시 저장했습니다. 내용을 채운 뒤 게시하세요.", "ok")
    return redirect(url_for("editor.edit", article_id=form["id"]))


def _new_page(form: dict[str, str], error: str = "", status: int = 200) -> Any:
    return render_template("editor_new.html", form=form, error=error, types=ARTICLE_TYPES,
                           categories=TAXONOMY, audiences=AUDIENCES), status


def _new_article_problem(form: dict[str, str]) -> str:
    if form["type"] not in ARTICLE_TYPES:
        return "문서 유형을 선택하세요."
    if not ARTICLE_ID.fullmatch(form["id"]) or len(form["id"]) > MAX_ID_CHARS:
        return (f"ID는 영문 소문자, 숫자, 하이픈(-)만 쓸 수 있습니다(최대 {MAX_ID_CHARS}자). "
                "예: shipping-delay-buyer")
    if find_article_path(_kb_dir(), form["id"]) is not None:
        return f"'{form['id']}' ID는 이미 사용 중입니다. 다른 ID를 정하세요."
    if not form["title"] or "\n" in form["title"]:
        return "제목을 한 줄로 입력하세요."
    if form["category"] not in TAXONOMY:
        return "분류(category)를 선택하세요."
    if form["audience"] not in AUDIENCES:
        return "대상(audience)을 선택하세요."
    if not form["owner"] or not ARTICLE_ID.fullmatch(form["owner"]):
        return "담당(owner)은 영문 소문자, 숫자, 하이픈으로 적어 주세요. 예: cx-policy"
    return ""


def _skeleton(form: dict[str, str]) -> str:
    today = dt.date.today()
    main = "안내" if form["type"] == "faq" else "정책"
    # json.dumps gives a valid YAML double-quoted string whatever the title contains.
    return "\n".join([
        "---", f"id: {form['id']}", f"title: {json.dumps(form['title'], ensure_ascii=False)}",
        f"type: {form['type']}", f"audience: {form['audience']}",
        f"category: {form['category']}", "tags: []", "channels: [chat, board, phone]",
        "status: draft", f"effective_from: {today.isoformat()}",
        f"review_by: {today.replace(year=today.year + 1, day=min(today.day, 28)).isoformat()}",
        f"owner: {form['owner']}", "version: 1", "---", "", "## 요약", "", f"## {main}", "",
        "## 응대 예시", "", "## 예상 문의", "### Q. ", "", "### Q. ", "", "## 내부 메모", "",
    ])


# -- history, diff, restore -----------------------------------------------------------------


@bp.get("/<article_id>/history")
def history(article_id: str):
    if _path_or_none(article_id) is None and not _store().article_history(article_id):
        return _not_found(article_id)
    entries = list(reversed(_store().article_history(article_id)))
    return render_template("editor_history.html", article_id=article_id, entries=entries,
                           file_status=_file_status(article_id))


@bp.get("/<article_id>/diff")
def diff(article_id: str):
    try:
        old = _store().article_version(article_id, request.args.get("a", type=int) or 0)
        new = _store().article_version(article_id, request.args.get("b", type=int) or 0)
    except UnknownArticleVersion:
        return _not_found(article_id, "비교할 버전을 찾을 수 없습니다.")
    # HtmlDiff escapes &, < and > in the text itself, so the table is safe to insert as is.
    table = difflib.HtmlDiff(wrapcolumn=DIFF_WRAP).make_table(
        old.source.split("\n"), new.source.split("\n"),
        f"#{old.id} · 버전 {old.version}", f"#{new.id} · 버전 {new.version}",
        context=True, numlines=3)
    return render_template("editor_diff.html", article_id=article_id, old=old, new=new,
                           table=table, same=old.source == new.source)


@bp.post("/<article_id>/restore")
def restore(article_id: str):
    history_id = request.form.get("history_id", type=int)
    try:
        result = publisher().restore(article_id, history_id or 0, author=_author())
    except UnknownArticleVersion:
        return _not_found(article_id, "복원할 버전을 찾을 수 없습니다.")
    except PublishError as exc:
        flash(f"{exc.korean} ({exc.english}) {_first_error(exc)}", "error")
        return redirect(url_for("editor.history", article_id=article_id))
    flash(f"#{history_id} 버전을 복원해 새 버전 {result.version}으로 게시했습니다.", "ok")
    return redirect(url_for("editor.history", article_id=article_id))


# -- the new-feature helper -----------------------------------------------------------------


def _similar_answers(article: Article | None) -> list[dict[str, Any]] | None:
    """Each anticipated question of a draft next to published passages that already answer it."""
    if article is None:
        return None
    retriever = current_app.extensions["suggester.service"].retriever
    audience = article.audience if article.audience in ("buyer", "seller") else None
    rows = []
    for question in article.questions():
        if not question.question:
            continue
        try:
            result = retriever.search(question.question, k=SIMILAR_PER_QUESTION + 5,
                                      audience=audience)
        except SearchIndexError:
            return None
        others = [p for p in result.passages if p.article_id != article.id]
        rows.append({"question": question.question, "line": question.line,
                     "grounded": result.grounded, "passages": others[:SIMILAR_PER_QUESTION]})
    return rows


def _is_draft(article: Article | None, showing_draft: bool) -> bool:
    return article is not None and (article.status == "draft" or showing_draft)


# -- small helpers ----------------------------------------------------------------------------


def _is_id(text: str) -> bool:
    return len(text) <= MAX_ID_CHARS and ARTICLE_ID.fullmatch(text) is not None


def _path_or_none(article_id: str) -> Path | None:
    if not ARTICLE_ID.fullmatch(article_id):
        return None
    return find_article_path(_kb_dir(), article_id)


def _file_hash(path: Path) -> str:
    try:
        return source_hash(read_article(path).source)
    except ArticleError:
        return ""


def _file_status(article_id: str) -> dict[str, Any] | None:
    path = _path_or_none(article_id)
    if path is None:
        return None
    try:
        article = read_article(path)
    except ArticleError as exc:
        return {"status": "broken", "version": None, "error": str(exc)}
    return {"status": article.status, "version": article.version, "error": ""}


def _parse_or_none(source: str, article_id: str) -> Article | None:
    try:
        return parse_article(source, Path(f"{article_id}.md"))
    except ArticleError:
        return None


def _preview_html(source: str) -> str:
    """The body rendered like agents see it (markdown-it, raw HTML off); front matter left out."""
    text = source.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[0].rstrip() == "---":
        closing = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
        if closing is not None:
            text = "\n".join(lines[closing + 1:])
    try:
        check_markdown_size(text.split("\n"), Path("preview"))
    except ArticleError as exc:  # too big to render in time; the findings say where
        return f'<p class="preview-error">{escape(exc.message)}</p>'
    return render_markdown(text)


def _findings_view(findings: list[Finding]) -> list[dict[str, Any]]:
    kb_dir = _kb_dir()
    return [{"where": f"{_relative(f.path, kb_dir)}:{f.line}", "line": f.line,
             "severity": f.severity, "message": f.message} for f in findings]


def _conflicts_view(article: Article | None, others: list[Article]) -> list[dict[str, Any]]:
    """Lines of other published articles that state this article's facts differently, or
    repeat its rules: each with this article's line beside it."""
    if article is None:
        return []
    kb_dir = _kb_dir()
    return [{"kind": c.kind, "label": "값이 다름" if c.kind == CONTRADICTION else "중복 문장",
             "line": c.line, "text": c.text, "detail": c.detail,
             "where": f"{_relative(c.other_path, kb_dir)}:{c.other_line}",
             "other_text": c.other_text}
            for c in _checker().check_article(article, others)]


def _relative(path: Path, kb_dir: Path) -> str:
    try:
        return str(path.relative_to(kb_dir))
    except ValueError:
        return str(path)


def _first_error(exc: PublishError) -> str:
    if isinstance(exc, LintFailed) and exc.findings:
        finding = exc.findings[0]
        return f"{_relative(finding.path, _kb_dir())}:{finding.line}: {finding.message}"
    return ""


def _not_found(article_id: str, message: str = "") -> Any:
    return render_template("auth_message.html", title="문서 없음",
                           message=message or f"'{article_id}' 문서를 찾을 수 없습니다."), 404
