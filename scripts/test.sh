#!/bin/sh
# Install everything the tests need on a fresh Debian/Ubuntu machine, then run them.
# Extra arguments go to pytest (./scripts/test.sh -k sampler).
set -eu
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    # The browser tests drive Debian's Chromium (Playwright's own download is not reachable offline).
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/ruff check --quiet cinescene app.py tests benchmarks scripts
# Two workers, one torch thread each (tests/conftest.py): most tests are single-threaded Python around tiny
# models, so on CI's two cores this halves the wall time that one two-thread process took.
exec .venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "$@"
