# The developer interface. `make demo` and `make test` each do all of their own set-up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test lint format install migrate bench bench-load bench-soak clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	DMED_DEMO_URL=http://127.0.0.1:$(PORT) $(PY) manage.py seed_demo
	DMED_DEMO_URL=http://127.0.0.1:$(PORT) $(PY) manage.py demo --port $(PORT)

# FHIR.js (the npm `fhir` package) for the XML client tests, installed when npm is there (without
# it those tests are skipped), again whenever package-lock.json changes.
XMLCLIENT_STAMP := tests/xmlclient/node_modules/.installed

$(XMLCLIENT_STAMP): tests/xmlclient/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "npm ci --prefix tests/xmlclient"; \
		npm ci --prefix tests/xmlclient --no-audit --no-fund --silent && touch $@; \
	else echo "npm is not installed: the FHIR.js XML client tests will be skipped"; fi

# The tests keep their own var/ folder, database and Celery queue, so a running demo is untouched.
test: $(STAMP) $(XMLCLIENT_STAMP)
	DMED_VAR_DIR=$${DMED_VAR_DIR:-$(CURDIR)/var/test} CELERY_QUEUE=$${CELERY_QUEUE:-dmed-test} \
		$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/fhir_api.py $(BENCH_ARGS)

# The load benchmark (wrk, 8 and 32 clients, SQLite and PostgreSQL beside a trivial Django view).
bench-load: $(STAMP)
	$(PY) benchmarks/load.py $(BENCH_ARGS)

# The soak (10 minutes of mixed load; the web and worker processes' memory sampled every 15 s).
bench-soak: $(STAMP)
	$(PY) benchmarks/soak.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var
