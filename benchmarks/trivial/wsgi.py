"""`gunicorn -c python:dmed.gunicorn_conf benchmarks.trivial.wsgi`: the trivial view's server."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

# Its own settings, even when the caller's environment names dmed's (as pytest-django's does).
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.trivial.settings"
application = get_wsgi_application()
