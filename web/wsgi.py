"""The WSGI entry point for production servers: `gunicorn web.wsgi:app`.

Each worker process builds its own app and loads the models and the index once, before it
takes requests (the e5 engine and Kiwi are not shared across a fork).
"""

from __future__ import annotations

import logging
import os

from web import create_app

app = create_app()
app.extensions["suggester.service"].warm_up()
# One line per worker once it can answer quickly (the load and crash tests wait for it).
logging.getLogger("gunicorn.error").info("worker %d ready: models and index loaded",
                                         os.getpid())
