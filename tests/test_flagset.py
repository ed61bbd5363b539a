"""Risk flags scored on a flag-only set (`suggester eval --flag-set`), as served."""

from __future__ import annotations

import json

import pytest

from suggester.evaluation.flagset import read_flag_set, run_flag_set


def write_set(path, items):
    path.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n",
                    encoding="utf-8")
    return path


def test_an_unknown_flag_is_refused_with_its_line(tmp_path):
    path = write_set(tmp_path / "flags.jsonl", [
        {"id": "f-1", "inquiry": "환불 언제 돼요?", "expected_flags": []},
        {"id": "f-2", "inquiry": "폰 번호 드릴게요", "expected_flags": ["phone"]},
    ])
    with pytest.raises(ValueError, match=r"flags.jsonl:2: unknown flag\(s\) phone"):
        read_flag_set(path)


def test_flags_are_counted_as_the_service_raises_them(shipped_settings, tmp_path):
    path = write_set(tmp_path / "flags.jsonl", [
        {"id": "f-1", "inquiry": "판매자가 카톡으로 연락하자면서 계좌로 입금하래요",
         "expected_flags": ["off_platform"]},
        {"id": "f-2", "inquiry": "포인트는 언제 소멸되나요?", "expected_flags": []},
        # Expected but not raised: a miss the report must list.
        {"id": "f-3", "inquiry": "포인트는 언제 들어와요?", "expected_flags": ["outage"]},
    ])
    scores = run_flag_set(shipped_settings, path)
    assert scores["by_flag"]["off_platform"]["tp"] == 1
    assert scores["by_flag"]["outage"]["fn"] == 1
    assert [w["id"] for w in scores["wrong"]] == ["f-3"]
    assert scores["items"] == 3
