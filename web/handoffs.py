"""Hand-offs from the insights page: feature request groups and knowledge gaps made drafts.

`/insights/features/` lists the feature request groups (count, first and last seen, masked
examples); editors set each group's status and, for 반영, the line agents' drafts may say.
`/insights/gaps/draft` turns a knowledge-gap group into a draft article and opens it in the
editor. Both write only for editors and admins.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from suggester.errors import InputError
from suggester.knowledge.articles import TAXONOMY, find_article_path
from suggester.operations.gap_drafts import AskedAndAnswered, gap_body
from suggester.publish import PublishError
from suggester.records.features import STATUSES, FeatureRecords
from suggester.records.store import Store, UnknownSuggestion
from web.auth import current_user, login_required

bp = Blueprint("handoffs", __name__, url_prefix="/insights")
MAX_GAP_IDS = 200


def _store() -> Store:
    return current_app.extensions["suggester.store"]


@bp.get("/features/")
@login_required()
def features():
    groups = FeatureRecords(_store()).groups(with_examples=True)
    return render_template("features.html", groups=groups, statuses=STATUSES)


@bp.post("/features/<int:group_id>")
@login_required("editor")
def set_feature_status(group_id: int):
    user = current_user()
    try:
        FeatureRecords(_store()).set_status(
            group_id, status=request.form.get("status", ""),
            announcement=request.form.get("announcement", ""),
            by=user.username if user else "unknown")
    except InputError as exc:
        flash(exc.korean, "error")
    else:
        flash("기능 제안 상태를 저장했습니다.", "ok")
    return redirect(url_for("handoffs.features"))


@bp.post("/gaps/draft")
@login_required("editor")
def gap_draft():
    """Make a draft article from a gap group's inquiries and open it in the editor."""
    from web.editor import _skeleton, publisher  # the editor's own article skeleton

    store = _store()
    records = []
    for suggestion_id in request.form.getlist("suggestion_id")[:MAX_GAP_IDS]:
        try:
            records.append(store.get_suggestion(suggestion_id))
        except UnknownSuggestion:
            continue
    if not records:
        flash("초안을 만들 문의를 찾지 못했습니다. 페이지를 새로 고쳐 주세요.", "error")
        return redirect(url_for("insights.index"))
    items = [AskedAndAnswered(question=r.inquiry_masked, reply=_sent_reply(store, r.id))
             for r in records]
    category = request.form.get("category", "")
    category = category if category in TAXONOMY else "이용방법"  # 미분류 is no KB category
    article_id = _new_id()
    sides = Counter(r.audience for r in records if r.audience in ("buyer", "seller"))
    form = {"id": article_id, "type": "faq", "category": category,
            "title": f"{category} 문의: {' '.join(records[0].inquiry_masked.split())[:40]}",
            "audience": sides.most_common(1)[0][0] if sides else "all", "owner": "cx-policy"}
    front = _skeleton(form).split("\n---\n")[0] + "\n---\n\n"
    source = front + gap_body(items, summary_hint=f"{category} 문의 {len(items)}건에 답할 문서")
    user = current_user()
    try:
        publisher().save_draft(source, author=user.username if user else "unknown")
    except PublishError as exc:
        flash(f"초안을 만들지 못했습니다: {exc.korean}", "error")
        return redirect(url_for("insights.index"))
    flash("지식 공백 묶음으로 문서 초안을 만들었습니다. 내용을 채우고 검토한 뒤 게시하세요.", "ok")
    return redirect(url_for("editor.edit", article_id=article_id))


def _sent_reply(store: Store, suggestion_id: str) -> str | None:
    """The text the agent sent for this inquiry, from their latest feedback with one."""
    sent = [f.final_text for f in store.feedback_for(suggestion_id)
            if f.final_text and f.verdict in ("used", "edited")]
    return sent[-1] if sent else None


def _new_id() -> str:
    """gap-YYYYMMDD-N: the first number no article (draft or published) has yet."""
    kb_dir = current_app.extensions["suggester.settings"].kb_dir
    stem = f"gap-{dt.date.today():%Y%m%d}"
    number = 1
    while find_article_path(kb_dir, f"{stem}-{number}") is not None:
        number += 1
    return f"{stem}-{number}"
