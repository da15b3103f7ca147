#!/usr/bin/env bash
# Build the MinkowskiEngine 0.5.4 wheel for one Python and its installed torch, once, and print
# the wheel's path on the last line of stdout (progress goes to stderr). Used by tools/setup.sh
# (the project venv, Python 3.11) and tools/install_python_deps.sh (a stock ROS 2 system,
# Python 3.12 on Ubuntu 24.04).
#
# Usage: tools/build_minkowski.sh PYTHON
#   PYTHON           the interpreter the wheel is for; torch must already be installed there
# Variables:
#   ME_CUDA          1 = CUDA build, 0 = CPU build, auto (default) = CUDA when nvcc exists and
#                    PYTHON's torch has CUDA
#   PINPOINT3D_CACHE where wheels, the source and build venvs are kept (~/.cache/pinpoint3d)
#   TORCH_INDEX_URL  pip index for the build venv's torch (the same torch build as PYTHON's)
#   MAX_JOBS         parallel compile jobs (default: all cores)
#
# Cache key: wheels/torch-<torch version>-<cpu|cuNNN>/ as tools/setup.sh has always used, one
# wheel per Python tag in it (MinkowskiEngine-0.5.4-cp311-..., -cp312-...).
set -eo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${1:?usage: build_minkowski.sh PYTHON}"
cache="${PINPOINT3D_CACHE:-$HOME/.cache/pinpoint3d}"
say() { printf '[minkowski] %s\n' "$*" >&2; }
die() { printf '[minkowski] ERROR: %s\n' "$*" >&2; exit 1; }

tver="$("$py" -c 'import torch; print(torch.__version__.split("+")[0])')" \
  || die "torch does not import in $py; install torch first"
pytag="$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
pyminor="$("$py" -c 'import sys; print(sys.version_info[1])')"
cuda="${ME_CUDA:-auto}"
if [ "$cuda" = auto ]; then
  cuda=0
  if command -v nvcc >/dev/null && "$py" -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)'; then cuda=1; fi
fi
variant=cpu
[ "$cuda" = 1 ] && variant="cu$("$py" -c 'import torch; print(torch.version.cuda.replace(".", ""))')"
wheeldir="$cache/wheels/torch-$tver-$variant"
wheel=$(ls "$wheeldir"/MinkowskiEngine-0.5.4-"$pytag"-*.whl 2>/dev/null | head -1 || true)
if [ -n "$wheel" ]; then
  say "using cached wheel $wheel"
  echo "$wheel"
  exit 0
fi

say "building MinkowskiEngine 0.5.4 ($variant, torch $tver, $pytag) once; about 8 minutes on 2 cores"
bvenv="$cache/build-venv-$pytag-$tver-$variant"
[ -x "$bvenv/bin/python" ] || "$py" -m venv "$bvenv" || die "cannot create a venv with $py (on Ubuntu: sudo apt install python3-venv)"
bpip=("$bvenv/bin/python" -m pip install -q --disable-pip-version-check)
"${bpip[@]}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==$tver" \
  || die "could not install torch $tver into the build venv (set TORCH_INDEX_URL to the index PYTHON's torch came from)"
if [ "$pyminor" -lt 12 ]; then
  # numpy.distutils (still imported by some setup.py paths) needs setuptools < 60 on <= 3.11.
  setuptools_spec='setuptools<60'
else
  # setuptools < 66.1 fails on 3.12 (pkgutil.ImpImporter is gone); the blas-env patch keeps
  # numpy.distutils out of the build, so a current setuptools is fine there.
  setuptools_spec='setuptools>=69'
fi
"${bpip[@]}" wheel ninja "$setuptools_spec" 'numpy<2' 2>&1 | grep -v 'dependency conflicts\|requires setuptools' >&2 || true

# The source: the PyPI sdist, kept in the cache, patched in a fresh copy (tools/patch_minkowski.py
# explains each patch).
srcdir="$cache/src"
mkdir -p "$srcdir"
sdist="$srcdir/MinkowskiEngine-0.5.4.tar.gz"
if [ ! -f "$sdist" ]; then
  "$bvenv/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    minkowskiengine==0.5.4 -d "$srcdir" || die "could not download the MinkowskiEngine 0.5.4 sdist"
  [ -f "$sdist" ] || sdist=$(ls "$srcdir"/[Mm]inkowski[Ee]ngine-0.5.4.tar.gz | head -1)
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/minkowski-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tar -xzf "$sdist" -C "$work"
src="$work/MinkowskiEngine-0.5.4"
shim_args=()
[ "$cuda" = 1 ] && shim_args=(--cxx-shim "$work/cxx-shim")
"$bvenv/bin/python" "$here/patch_minkowski.py" "$src" "${shim_args[@]}" || die "patching the source failed"

opts=(--blas=openblas)
if [ "$cuda" = 1 ]; then
  opts+=(--force_cuda)
  # First on nvcc's include path: the __to_address shim (patch_minkowski.py, issue #596).
  [ -f "$work/cxx-shim/bits/shared_ptr_base.h" ] && export NVCC_APPEND_FLAGS="${NVCC_APPEND_FLAGS:+$NVCC_APPEND_FLAGS }-I$work/cxx-shim"
else
  opts+=(--cpu_only)
fi
mkdir -p "$wheeldir"
log="$cache/build-me-$pytag-$tver-$variant.log"
say "build log: $log"
# setup.py runs commands by name: the build venv comes first on PATH so they are its own.
(cd "$src" && PATH="$bvenv/bin:$PATH" MINKOWSKI_BLAS=openblas MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
  "$bvenv/bin/python" setup.py bdist_wheel "${opts[@]}" -d "$wheeldir") > "$log" 2>&1 &
bpid=$!
while kill -0 "$bpid" 2>/dev/null; do
  sleep 30; say "  still compiling ($(grep -c '\.o$\|g++\|nvcc' "$log" 2>/dev/null || true) log lines of compiler work)"
done
wait "$bpid" || die "MinkowskiEngine build failed; last lines of $log:
$(tail -20 "$log")"
wheel=$(ls "$wheeldir"/MinkowskiEngine-0.5.4-"$pytag"-*.whl | head -1) || die "the build wrote no wheel"
say "built $wheel"
echo "$wheel"
