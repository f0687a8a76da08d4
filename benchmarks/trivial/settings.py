"""The trivial Django project that `benchmarks/load.py` measures dmed against: one JSON view, no
apps, no middleware, no database. What Django itself serves under the same gunicorn settings."""

from __future__ import annotations

SECRET_KEY = "benchmark-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.trivial.urls"
DATABASES: dict = {}
USE_TZ = True
