# mailsec: `make run` serves the app with its worker and scheduler; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
VAR_DIR := $(or $(MAILSEC_VAR_DIR),var)

# Binaries the test suite starts, and the Debian packages that bring them.
TEST_BINARIES := redis-server:redis-server knotd:knot keymgr:knot chromium:chromium dovecot:dovecot-imapd doveadm:dovecot-core \
  postfix:postfix /usr/lib/dovecot/pop3-login:dovecot-pop3d xgettext:gettext msgfmt:gettext

.PHONY: run test lint format system-packages build-tools clean scale openapi messages makemessages-args

$(BIN)/python:
	@rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV) || { \
	  echo "venv failed: installing python3-venv"; rm -rf $(VENV); \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip

# The French translation (locale/) is compiled by gettext's msgfmt into .mo files, not kept in git.
MESSAGES := $(wildcard locale/*/LC_MESSAGES/django.po)
COMPILED_MESSAGES := $(MESSAGES:.po=.mo)

locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po | build-tools
	msgfmt --check-format -o $@ $<

# The hot path of report ingestion is compiled (Cython, against lxml's C API): it needs a C
# compiler and Python's headers, and is built against the lxml installed in the venv.
COMPILED := setup.py $(wildcard reports/*.pyx reports/*/*.pyx)

build-tools:
	@missing=""; command -v cc >/dev/null || missing="gcc"; \
	command -v msgfmt >/dev/null || missing="$$missing gettext"; \
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h")))' \
	  || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "Building mailsec needs:$$missing (run make as root, or apt-get install them)"; exit 1; fi; \
	  echo "Installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/build-requires.txt: pyproject.toml | $(BIN)/python
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' > $@

$(VENV)/.installed: pyproject.toml $(COMPILED) $(VENV)/build-requires.txt | $(BIN)/python build-tools
	$(BIN)/pip install --quiet -r $(VENV)/build-requires.txt
	$(BIN)/pip install --quiet --no-build-isolation -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(COMPILED) $(VENV)/build-requires.txt | $(BIN)/python build-tools
	$(BIN)/pip install --quiet -r $(VENV)/build-requires.txt
	$(BIN)/pip install --quiet --no-build-isolation -e '.[test]'
	@touch $@ $(VENV)/.installed

$(VAR_DIR)/secret_key: | $(BIN)/python
	@mkdir -p $(VAR_DIR)
	@umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(48))' > $@
	@echo "Generated a secret key in $@"

$(VAR_DIR)/encryption_key: | $(BIN)/python
	@mkdir -p $(VAR_DIR)
	@umask 077 && $(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' > $@
	@echo "Generated an encryption key for stored passwords in $@ (back it up with the database)"

run: $(VENV)/.installed $(VAR_DIR)/secret_key $(VAR_DIR)/encryption_key $(COMPILED_MESSAGES)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "mailsec: http://$${MAILSEC_BIND:-127.0.0.1}:$(PORT)/  (Ctrl-C stops the web app, the worker and the scheduler)"
	@# supervisord restarts whichever of them dies (mailsec/supervise.py).
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m mailsec.supervise --procfile mailsec/Procfile

system-packages:
	@missing=""; for pair in $(TEST_BINARIES); do \
	  bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$bin >/dev/null || [ -x /usr/sbin/$$bin ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "The tests need:$$missing (run make test as root, or apt-get install them)"; exit 1; fi; \
	  echo "Installing$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(VENV)/.installed-test $(VAR_DIR)/secret_key $(VAR_DIR)/encryption_key system-packages lint $(COMPILED_MESSAGES)
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

# The scale harness (docs/scaling.md): SCALE_ARGS="--domains 1000 --workers 1,2" for less.
scale: $(VENV)/.installed-test system-packages $(COMPILED_MESSAGES)
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

# The API's OpenAPI schema, checked in: tests/api/test_schema_drift.py fails until it is
# regenerated after a change of the API.
openapi: $(VENV)/.installed-test $(VAR_DIR)/secret_key $(VAR_DIR)/encryption_key
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

# Gather the strings to translate into locale/fr/LC_MESSAGES/django.po (then translate the new
# entries there); tests/test_translations.py fails while one is missing or fuzzy, and runs
# makemessages with these same flags (`make -s makemessages-args` prints them).
MAKEMESSAGES_ARGS := --locale fr --add-location file --no-obsolete \
  --ignore .venv --ignore var --ignore tests --ignore bench --ignore build --ignore docs
messages: $(VENV)/.installed-test $(VAR_DIR)/secret_key $(VAR_DIR)/encryption_key system-packages
	$(BIN)/python manage.py makemessages $(MAKEMESSAGES_ARGS)

makemessages-args:
	@echo $(MAKEMESSAGES_ARGS)

clean:
	rm -rf $(VENV) $(VAR_DIR)/static .pytest_cache build
	rm -f reports/*.c reports/*.so reports/*/*.c reports/*/*.so
