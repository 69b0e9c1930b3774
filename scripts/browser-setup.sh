#!/usr/bin/env bash
# The browser the labelling app's tests drive: Debian's `chromium` (apt) and Playwright (pip, the
# `browser` extra). Playwright's own browser download needs the network, so it is never used.
# Also the terminal `principles try --watch` is tested in: Debian's `tmux` (apt).
#
#   scripts/browser-setup.sh            install what is missing where possible; otherwise say why
#                                       (the browser and terminal tests are then skipped with
#                                       that reason)
#   scripts/browser-setup.sh --require  fail unless all three are installed (CI)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}  # the environment the tests run in
REQUIRE=${1:-}
missing=()

if ! command -v chromium >/dev/null; then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        echo "browser-setup: installing Debian's chromium (about a minute)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    command -v chromium >/dev/null || missing+=("chromium (apt-get install -y chromium, as root)")
fi
if ! command -v tmux >/dev/null; then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        echo "browser-setup: installing Debian's tmux"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
    fi
    command -v tmux >/dev/null || missing+=("tmux (apt-get install -y tmux, as root)")
fi
if ! "$PY" -c "import playwright" 2>/dev/null; then
    echo "browser-setup: installing playwright into .venv"
    "$PY" -m pip install -q "playwright==1.65.2"  # the pin of pyproject's `browser` extra
    "$PY" -c "import playwright" 2>/dev/null || missing+=("playwright (pip install playwright==1.65.2)")
fi

if ((${#missing[@]})); then
    echo "browser-setup: missing ${missing[*]}: the tests that need them will be skipped"
    [[ $REQUIRE == --require ]] && exit 1
fi
exit 0
