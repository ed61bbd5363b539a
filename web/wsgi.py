"""The WSGI entry point for production servers: `gunicorn web.wsgi:app`.

Each worker process builds its own app and loads the models and the index once, before it
takes requests (the e5 engine and Kiwi are not shared across a fork).
"""

from __future__ import annotations

from web import create_app

app = create_app()
app.extensions["suggester.service"].warm_up()
