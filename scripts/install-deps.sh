#!/usr/bin/env bash
# Installs every Debian package that duet's build, tests and benchmarks need.
# Idempotent: it asks apt only for what is missing, and runs `apt-get update` at most once.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config clang-format ccache
  # libraries
  nlohmann-json3-dev libcli11-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev
  # tests
  libgtest-dev googletest
  # benchmarks and golden values (peers): OpenBLAS, PyTorch (nodejs and npm: see below)
  libopenblas-dev python3-torch python3-numpy
  python3-onnx  # bench/peers/export_onnx_int8.py writes ONNX Runtime's int8 (QDQ) graph
  # data
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The ONNX Runtime peer runs on node. Checked by command, not by package: a node from another
# apt source (e.g. nodesource's nodejs, which bundles npm) conflicts with Debian's npm package.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Best effort: onnxruntime-node for `duet bench infer` (its CPU library ships in the package, so
# --ignore-scripts skips only the GPU download). Without it the benchmark skips the peer.
peers="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bench/peers"
ort_loads() { (cd "$peers" && node -e "require('onnxruntime-node')") >/dev/null 2>&1; }
if command -v npm >/dev/null 2>&1 && ! ort_loads; then
  echo "install-deps: npm install --ignore-scripts in bench/peers (onnxruntime-node)"
  if ! (cd "$peers" && timeout 600 npm install --ignore-scripts --no-audit --no-fund --loglevel=error) ||
    ! ort_loads; then
    echo "install-deps: warning: onnxruntime-node is not usable (npm registry unreachable?);" \
      "duet bench infer will time duet without the ONNX Runtime peer" >&2
  fi
fi
