"""The agents' console: the page that asks /api/suggest, and articles as agents read them."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from suggester.knowledge.articles import ARTICLE_ID, TAXONOMY
from web.articles import render_article
from web.auth import login_required

bp = Blueprint("console", __name__)

CHANNELS = (("chat", "채팅"), ("board", "게시판"), ("phone", "전화"))
AUDIENCES = (("", "자동"), ("buyer", "구매자"), ("seller", "판매자"))


@bp.get("/")
@login_required()
def index():
    return render_template("index.html", taxonomy=TAXONOMY, channels=CHANNELS,
                           audiences=AUDIENCES)


@bp.get("/articles/<article_id>")
@login_required()
def article(article_id: str):
    """One article with every section; internal ones are marked for agents, never hidden."""
    if not ARTICLE_ID.fullmatch(article_id):
        abort(404)
    kb_dir = current_app.extensions["suggester.settings"].kb_dir
    rendered = render_article(kb_dir, article_id)
    if rendered is None:
        abort(404)
    return render_template("article.html", article=rendered)
