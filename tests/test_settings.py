"""Settings: one registry, environment variables, overrides, clear errors, documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from suggester.errors import SettingsError
from suggester.settings import SETTINGS, load_settings

from conftest import ROOT


def test_defaults():
    settings = load_settings()
    assert settings.data_dir == Path(".suggester")
    assert settings.kb_dir == Path("kb/articles")
    assert settings.chroma_host == ""
    assert settings.max_inquiry_chars == 4000


def test_environment_then_overrides_win():
    environ = {"SUGGESTER_DATA_DIR": "/tmp/x", "SUGGESTER_PORT": "9000"}
    settings = load_settings({"port": 9100}, environ=environ)
    assert settings.data_dir == Path("/tmp/x")
    assert settings.port == 9100


@pytest.mark.parametrize(("environ", "words"), [
    ({"SUGGESTER_PORT": "eighty"}, "SUGGESTER_PORT must be a whole number"),
    ({"SUGGESTER_COLLECTION": "ab"}, "collection name 'ab' is invalid"),
    ({"SUGGESTER_COLLECTION": "한글이름"}, "is invalid"),
    ({"SUGGESTER_LOG_LEVEL": "LOUD"}, "SUGGESTER_LOG_LEVEL must be"),
    ({"SUGGESTER_LLM_BASE_URL": "http://127.0.0.1:8080/v1"}, "SUGGESTER_LLM_MODEL is required"),
    ({"SUGGESTER_LLM_TIMEOUT": "soon"}, "SUGGESTER_LLM_TIMEOUT must be a number"),
    ({"SUGGESTER_LLM_TIMEOUT": "0"}, "more than 0 seconds"),
])
def test_bad_values_name_the_variable(environ, words):
    with pytest.raises(SettingsError, match=words):
        load_settings(environ=environ)


def test_unknown_override_is_refused():
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings({"colour": "blue"})


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"`{setting.env_var}`" in readme, setting.env_var
        assert setting.help in readme, setting.name
