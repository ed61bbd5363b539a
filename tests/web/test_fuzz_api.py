"""Fuzz the JSON API from its OpenAPI description (web/openapi.yaml) with schemathesis.

Every operation gets valid and invalid requests generated from the description and sent to the
real app (the shipped index) through WSGI, with an agent's API token. Each response must not be
a server error, must have a documented status, content type and body shape, invalid data must
be refused and valid data accepted. Then once more without credentials: every operation but
/api/health must answer 401, never anything else. The short tier runs in `make test`; the
`long` tier (`make test-long`) runs many more examples per operation.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from web.api import OPENAPI

from conftest import add_token, bearer

SPEC = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection, positive_data_acceptance]
# An invalid request is refused with a 4xx: 413 for an inquiry over the limit is one of them.
CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [400, 404, 405, 413, 415]}}})
OPEN_OPERATIONS = {("GET", "/api/health")}
TIERS = [pytest.param(25, id="short"),  # examples per operation and mode in `make test`
         pytest.param(500, id="long", marks=pytest.mark.long)]


def _operations() -> list[object]:
    """(method, path, mode) for every described operation; invalid data only where it has input."""
    params = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            takes_input = "requestBody" in operation or "parameters" in operation
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if mode is GenerationMode.POSITIVE or takes_input:
                    params.append(pytest.param(method.upper(), path, mode,
                                               id=f"{mode.value}-{method.upper()} {path}"))
    return params


@pytest.fixture
def agent_token(app) -> dict[str, str]:
    """An agent's API token; the rate limit is lifted, as hundreds of cases come in a minute."""
    from dataclasses import replace

    app.extensions["suggester.settings"] = replace(app.extensions["suggester.settings"],
                                                   api_rate_limit=0)
    return bearer(add_token(app, "fuzzer"))


@pytest.fixture
def api_schema(app, agent_token):
    """The description as the app serves it, bound to the app (requests go through WSGI)."""
    return schemathesis.openapi.from_wsgi("/api/openapi.yaml", app, config=CONFIG,
                                          headers=agent_token)


def _fuzz(operation, mode: GenerationMode, examples: int, call) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        call(case)

    check()


@pytest.mark.parametrize("examples", TIERS)
@pytest.mark.parametrize(("method", "path", "mode"), _operations())
def test_api_conforms_to_its_description(api_schema, agent_token, method, path, mode, examples):
    _fuzz(api_schema[path][method], mode, examples,
          lambda case: case.call_and_validate(checks=CHECKS, headers=agent_token))


@pytest.mark.parametrize("examples", TIERS)
@pytest.mark.parametrize(("method", "path", "mode"), _operations())
def test_anonymous_callers_get_401_whatever_they_send(api_schema, method, path, mode, examples):
    def call(case) -> None:
        case.headers = {name: value for name, value in (case.headers or {}).items()
                        if name.lower() != "authorization"}
        response = case.call()
        assert response.status_code < 500, response.text
        if (method, path) not in OPEN_OPERATIONS:
            assert response.status_code == 401, (response.status_code, response.text)
            assert set(response.json()) == {"error", "message", "message_ko"}

    _fuzz(api_schema[path][method], mode, examples, call)


# -- the description itself ------------------------------------------------------------------


def _api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = rule.rule.replace("<", "{").replace(">", "}")
            routes |= {(method.lower(), path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_api_route_is_described_and_every_description_is_a_route(app):
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    described = {(method, path) for path, item in spec["paths"].items() for method in item
                 if method in ("get", "post", "put", "patch", "delete")}
    assert _api_routes(app) == described


def test_the_description_is_served(api_client):
    response = api_client.get("/api/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    assert yaml.safe_load(response.get_data(as_text=True))["paths"]["/api/suggest"]


def test_not_blank_in_the_description_is_what_the_server_strips():
    # Found by the long tier: "\x1e" matched JSON Schema's \S, but str.strip() removes it.
    pattern = re.compile(SPEC["components"]["schemas"]["SuggestRequest"]["properties"]
                         ["inquiry"]["pattern"])
    for char in map(chr, range(0x3001)):
        assert (pattern.search(char) is None) == (not char.strip()), hex(ord(char))
