"""Editors learn which anticipated questions (## 예상 문의) another article answers first."""

from __future__ import annotations

from click.testing import CliRunner

from suggester.cli import main
from suggester.routes import misrouted_questions
from suggester.search.index import Indexer
from suggester.service import Suggester

OFF_TOPIC = "카드 결제 환불은 언제 완료돼요?"  # refund-when states it; shipping-late does not


def add_question(path, question: str, answer: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n")
                    + f"\n\n### Q. {question}\n{answer}\n", encoding="utf-8")


def test_a_question_another_article_answers_is_listed_with_its_line(small_settings, small_kb):
    late = small_kb / "faq" / "shipping-late.md"
    add_question(late, OFF_TOPIC, "문의해 주세요.")
    Indexer(small_settings).sync()
    routes, checked = misrouted_questions(Suggester(small_settings), small_kb)
    assert checked == 5  # two questions in each article, and the new one
    listed = {r.question: r for r in routes}
    assert OFF_TOPIC in listed and "판매자에게 연락할 수 있나요?" not in listed
    route = listed[OFF_TOPIC]
    assert route.article_id == "shipping-late" and route.first == "refund-when"
    assert late.read_text(encoding="utf-8").split("\n")[route.line - 1] == f"### Q. {OFF_TOPIC}"
    assert str(route).startswith(f"{late}:{route.line}: \"{OFF_TOPIC}\" is answered first by "
                                 "refund-when")


def test_every_listed_question_of_the_shipped_kb_names_another_article(shipped_settings):
    # Its own Suggester: the shared one would learn 221 questions' articles as asked together.
    routes, checked = misrouted_questions(Suggester(shipped_settings), shipped_settings.kb_dir)
    assert checked > 200 and routes
    for route in routes:
        assert route.first != route.article_id and route.own_rank != 1
        heading = route.path.read_text(encoding="utf-8").split("\n")[route.line - 1]
        assert heading.startswith("### Q.") and route.question in heading


def test_the_command_names_an_unknown_article(shipped_settings):
    result = CliRunner().invoke(main, ["--kb-dir", str(shipped_settings.kb_dir), "--data-dir",
                                       str(shipped_settings.data_dir), "routes", "--article",
                                       "no-such-article", "-q"])
    assert result.exit_code == 2 and "no-such-article" in result.output
