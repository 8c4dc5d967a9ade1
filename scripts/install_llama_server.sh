#!/usr/bin/env bash
# Install llama-cpp-python[server] (plus gguf, if absent) into the active Python.
#
# llama-cpp-python ships only an sdist on PyPI, so it is compiled here (CPU
# only, several minutes on 2 cores). The built wheel is cached per machine so
# later runs install in seconds, and the script exits at once when the pinned
# version is already importable. gguf (used by the tests to write the tiny
# model) is also in the package's test extra; it is installed here, pinned,
# only when missing, so a newer one from the extra is left alone.
#
# Environment:
#   PYTHON                    interpreter to install into (default: python, else python3)
#   LLAMA_CPP_PYTHON_VERSION  override the pinned version
#   LLAMA_WHEEL_CACHE         override the wheel cache directory
#   LLAMA_FORCE_REBUILD=1     ignore a cached wheel and compile again
set -euo pipefail

PY="${PYTHON:-python}"
if ! command -v "$PY" >/dev/null 2>&1; then
    PY=python3
fi
LLAMA_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
GGUF_VERSION="0.19.0"
CACHE_DIR="${LLAMA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-llm-notebook/wheels}"

log() { printf '[install_llama_server] %s\n' "$*" >&2; }

already_installed() {
    "$PY" - "$LLAMA_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version

if version("llama_cpp_python") != sys.argv[1]:
    sys.exit(1)
import fastapi, gguf, pydantic_settings, sse_starlette, starlette_context, uvicorn, yaml  # noqa: F401
EOF
}

if [[ "${LLAMA_FORCE_REBUILD:-0}" != "1" ]] && already_installed; then
    log "llama-cpp-python[server]==$LLAMA_VERSION and gguf already installed in $("$PY" -c 'import sys; print(sys.prefix)')"
    exit 0
fi

mkdir -p "$CACHE_DIR"

find_wheel() {
    compgen -G "$CACHE_DIR/llama_cpp_python-${LLAMA_VERSION}-*.whl" | head -n 1 || true
}

wheel="$(find_wheel)"
if [[ "${LLAMA_FORCE_REBUILD:-0}" == "1" && -n "$wheel" ]]; then
    rm -f "$wheel"
    wheel=""
fi

if [[ -z "$wheel" ]]; then
    jobs="$(nproc 2>/dev/null || echo 2)"
    # CPU-only build without -march=native (ggml then targets the common
    # AVX2/FMA/F16C level), so a cached wheel does not depend on the exact
    # CPU it was built on. Multimodal (mtmd), HTTPS and the llama.cpp
    # command-line binaries are not needed by the server, so they are skipped.
    export CMAKE_ARGS="${CMAKE_ARGS:-} -DGGML_NATIVE=OFF -DGGML_CCACHE=OFF -DLLAVA_BUILD=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DCMAKE_BUILD_TYPE=Release"
    export CMAKE_BUILD_PARALLEL_LEVEL="$jobs"
    export MAKEFLAGS="-j$jobs"
    log "building llama-cpp-python==$LLAMA_VERSION from source with $jobs jobs (takes several minutes)"
    build_dir="$(mktemp -d)"
    trap 'rm -rf "$build_dir"' EXIT
    start=$SECONDS
    "$PY" -m pip wheel --no-deps --no-binary llama-cpp-python \
        -w "$build_dir" "llama-cpp-python==$LLAMA_VERSION"
    built="$(compgen -G "$build_dir/llama_cpp_python-${LLAMA_VERSION}-*.whl" | head -n 1 || true)"
    if [[ -z "$built" ]]; then
        log "build finished but no wheel was produced in $build_dir"
        exit 1
    fi
    mv "$built" "$CACHE_DIR/"
    wheel="$CACHE_DIR/$(basename "$built")"
    log "built $(basename "$wheel") in $((SECONDS - start))s, cached in $CACHE_DIR"
else
    log "using cached wheel $wheel"
fi

requirements=("llama-cpp-python[server]==$LLAMA_VERSION")
if ! "$PY" -c 'import gguf' >/dev/null 2>&1; then
    requirements+=("gguf==$GGUF_VERSION")
fi
"$PY" -m pip install --find-links "$CACHE_DIR" --only-binary llama-cpp-python "${requirements[@]}"

if ! already_installed; then
    log "installation finished but llama_cpp.server dependencies are not importable with $PY"
    exit 1
fi
log "llama-cpp-python[server]==$LLAMA_VERSION and gguf installed"
