"""The impact preview (`suggester preview`, 영향 미리보기): what a publish would change.

Runs on the session's index of the shipped KB; the shadow index lives in a temporary folder,
so the served index and files must be exactly as before afterwards.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from suggester.cli import main
from suggester.evaluation.golden import load_golden
from suggester.evaluation.impact import Inquiry, draft_facts, preview_impact
from suggester.search.index import read_generation

from conftest import ROOT, SHIPPED_KB

RETURNS = SHIPPED_KB / "policy" / "return-policy.md"


def _inquiries_citing(article_id: str) -> list[Inquiry]:
    return [Inquiry(text=item.inquiry, source="golden", golden=item,
                    audience=item.audience if item.audience in ("buyer", "seller") else None)
            for item in load_golden("all", ROOT / "eval" / "golden")
            if article_id in item.relevant]


def test_draft_facts_are_the_numbers_with_units_in_order():
    text = "수수료는 5%이고 최소 500원이에요. 배송완료 후 7일, 카드는 3~5영업일, 다시 5%예요."
    assert draft_facts(text) == ("5%", "500원", "7일", "5영업일")


def test_archiving_a_needed_article_lists_the_changed_answers_and_warns_below_a_floor(
        shipped_settings):
    archived = RETURNS.read_text(encoding="utf-8").replace("status: published",
                                                           "status: archived")
    generation = read_generation(shipped_settings)
    seen: list[tuple[int, int]] = []
    report = preview_impact(shipped_settings, archived, inquiries=_inquiries_citing(
        "return-policy"), progress=lambda done, total: seen.append((done, total)),
        thresholds_path=ROOT / "eval" / "thresholds.toml")
    assert seen[-1] == (report.inquiries, report.inquiries) and len(seen) == report.inquiries
    assert report.changes
    assert all(c.before.first_article == "return-policy" != c.after.first_article
               for c in report.changes if "첫 문서" in c.what)
    figures = report.to_dict()["figures"]["retrieval.served.hit@5"]
    assert figures["before"] >= 0.95 > figures["after"]
    assert any(w.startswith("retrieval.served.hit@5") for w in report.warnings)
    # Nothing served changed: same generation, same file.
    assert read_generation(shipped_settings) == generation
    assert "status: published" in RETURNS.read_text(encoding="utf-8")


def test_preview_command_prints_json(shipped_settings, tmp_path):
    changed = tmp_path / "selling-fees.md"
    changed.write_text((SHIPPED_KB / "policy" / "selling-fees.md").read_text(encoding="utf-8")
                       .replace("5%", "7%"), encoding="utf-8")
    result = CliRunner().invoke(main, ["--kb-dir", str(SHIPPED_KB), "--data-dir",
                                       str(shipped_settings.data_dir), "preview", str(changed),
                                       "--json"],
                                env={"SUGGESTER_CACHE_DIR": str(shipped_settings.cache_dir),
                                     "SUGGESTER_DATABASE": str(tmp_path / "db.sqlite3")})
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["article_id"] == "selling-fees" and report["inquiries"] >= 200
    assert any("7%" in c["after"]["facts"] for c in report["changes"])
