"""The shipped knowledge base: lints clean and covers what the CX team needs."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from suggester.knowledge.articles import TAXONOMY
from suggester.knowledge.lint import lint_kb

from conftest import SHIPPED_KB


@pytest.fixture(scope="module")
def report():
    return lint_kb(SHIPPED_KB)


def test_shipped_kb_has_no_lint_errors(report):
    assert report.errors == []


def test_at_least_sixty_published_articles(report):
    assert len(report.published) >= 60


def test_every_category_has_published_articles(report):
    assert {a.category for a in report.published} == set(TAXONOMY)


def test_both_sides_are_covered(report):
    audiences = Counter(a.audience for a in report.published)
    assert audiences["buyer"] >= 15 and audiences["seller"] >= 10


def test_at_least_fifteen_exception_cases(report):
    assert sum(a.type == "exception" for a in report.published) >= 15


def test_every_published_article_has_a_script_and_two_questions(report):
    for article in report.published:
        assert article.section("응대 예시") is not None, article.path
        assert len(article.questions()) >= 2, article.path


def test_a_new_feature_is_documented_with_its_questions(report):
    launched = [a for a in report.published
                if a.effective_from and a.effective_from >= dt.date(2026, 11, 1)]
    assert launched and max(len(a.questions()) for a in launched) >= 4

