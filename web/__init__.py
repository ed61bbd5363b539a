"""The Flask app: JSON API under /api and the agents' console.

`create_app` builds the heavy objects once and hangs them on the app, so views stay thin.
Templates and static assets ship inside this package (see pyproject's package-data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from suggester.settings import Settings, load_settings

_HERE = Path(__file__).parent


def create_app(test_config: dict[str, Any] | None = None, *,
               settings: Settings | None = None) -> Flask:
    """Build the app; `test_config` overrides Flask config, `settings` the Suggester settings."""
    app = Flask(__name__, template_folder=str(_HERE / "templates"),
                static_folder=str(_HERE / "static"))
    app.config.from_mapping(JSON_AS_ASCII=False)
    if test_config:
        app.config.update(test_config)
    app.extensions["suggester.settings"] = settings or load_settings()

    from web import api, console

    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    return app
