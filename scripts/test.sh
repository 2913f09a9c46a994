#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs pytest.
# Usage: bash scripts/test.sh [pytest args...]   (e.g. tests/unit, or -n 0 for one process)
set -euo pipefail
cd "$(dirname "$0")/.."

python -m uv --version >/dev/null 2>&1 || python -m pip install --quiet uv
# the locked environment (.venv), the same on every machine
python -m uv sync --frozen --extra dev --quiet

# headless Chromium renders the report in one test; install it when we may (root with apt), else that
# test skips locally and fails in CI, where it is required
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the report screenshot test will not run" >&2
fi

export ESN_PSEUDONYM_KEY="${ESN_PSEUDONYM_KEY:-test-key-not-a-secret}"
.venv/bin/ruff check pipelines dags tests bench
.venv/bin/mypy pipelines
mkdir -p build
status=0
# two workers (ESN_TEST_WORKERS; 0 runs in one process), one test file per worker at a time: module
# fixtures are built once, and every test owns its databases, folders and ports (uuid/pid-named databases,
# tmp_path, free ports), so files run side by side; arguments after these override them
.venv/bin/python -m pytest --junitxml=build/junit.xml -n "${ESN_TEST_WORKERS:-2}" --dist loadfile "$@" || status=$?
# duckdb's bindings may print reference-leak notes at interpreter exit, after pytest's own summary:
# repeat the totals as the last line so that whoever reads the end of the log sees them
.venv/bin/python - <<'PY' || true
import xml.etree.ElementTree as ET
suite = ET.parse("build/junit.xml").getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
total, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
skipped = int(suite.get("skipped", 0))
print(f"tests: {total - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
exit $status
