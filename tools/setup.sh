#!/usr/bin/env bash
# One-time, idempotent set-up: system packages, .venv with pinned wheels (ROS 2 Kilted from PyPI,
# torch, open3d, ...), the CMake fix-ups the ROS wheels need, and MinkowskiEngine 0.5.4 from a
# wheel cached outside the repository (built once, ~8 min on 2 cores, by tools/build_minkowski.sh).
# A stock ROS 2 system (Jazzy/Kilted, system Python) uses tools/install_python_deps.sh instead.
#
# Variables:
#   TORCH_SPEC       pip requirement for torch (default torch==2.13.0, the local CPU wheel).
#                    GPU users: a CUDA build, e.g. TORCH_SPEC='torch==2.13.0' with a CUDA index.
#   PINPOINT3D_CACHE where built wheels are kept (default ~/.cache/pinpoint3d).
#   ME_CUDA=1        build MinkowskiEngine with CUDA (default: auto = when nvcc exists and the
#                    installed torch has CUDA); ME_CUDA=0 forces the CPU-only build.
#   TORCH_INDEX_URL  pip index of that torch, for MinkowskiEngine's build venv.
set -eo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cache="${PINPOINT3D_CACHE:-$HOME/.cache/pinpoint3d}"
# The venv's real home is outside the checkout and .venv links to it: CMake refuses to export
# include paths (the venv's numpy headers, used by the generated interfaces) that lie inside the
# package's source directory, and the repository root *is* that directory.
venv="$cache/venvs/$(basename "$root")-$(printf '%s' "$root" | sha256sum | cut -c1-10)"
torch_spec="${TORCH_SPEC:-torch==2.13.0}"
say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- system packages ----------------------------------------------------------------------
command -v python3.11 >/dev/null || python3 -c 'import sys; assert sys.version_info[:2] == (3, 11)' \
  || die "Python 3.11 is required (the ROS 2 Kilted wheels are cp311)."
PY=$(command -v python3.11 || command -v python3)
missing=()
for pkg in libopenblas-dev libusb-1.0-0 cmake; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "${missing[*]} missing: run sudo apt-get install ${missing[*]}"
  fi
fi

# --- .venv --------------------------------------------------------------------------------
stamp="$venv/.pinpoint3d-ready"
want="$(cat requirements.txt requirements-ros.txt tools/setup.sh | sha256sum | cut -c1-16) $torch_spec"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say ".venv is up to date"
else
  [ -x "$venv/bin/python" ] || { say "creating the venv in $venv (.venv links to it)"; mkdir -p "$(dirname "$venv")"; "$PY" -m venv "$venv"; }
  say "installing pinned Python packages (first time: about 2 minutes)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "$torch_spec" -r requirements-ros.txt -r requirements.txt \
    2> >(grep -v "^WARNING: Location" >&2) || die "pip install failed (see above)"
  # The ROS wheels were built in manylinux; their CMake exports point at /opt/python/....
  pyinc="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  npinc="$("$venv/bin/python" -c 'import numpy; print(numpy.get_include())')"
  # (nothing left to fix on a re-run: grep finds no file, which is fine)
  { grep -rlZ '/opt/python/cp3' "$venv/share" --include='*.cmake' 2>/dev/null || true; } \
    | xargs -0 -r sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${pyinc}#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#${npinc}#g"
  touch "$venv/AMENT_IGNORE"  # keeps the ament linters from walking the venv
  echo "$want" > "$stamp"
fi

if [ "$(readlink "$root/.venv" 2>/dev/null)" != "$venv" ]; then
  [ -e "$root/.venv" ] && [ ! -L "$root/.venv" ] && { say "replacing the old in-tree .venv directory"; rm -rf "$root/.venv"; }
  ln -sfn "$venv" "$root/.venv"
fi

# --- MinkowskiEngine ----------------------------------------------------------------------
me_import='import collections, collections.abc; collections.Sequence = collections.abc.Sequence; import MinkowskiEngine'
if "$venv/bin/python" -c "$me_import" 2>/dev/null; then
  say "MinkowskiEngine is installed"
else
  # Built once per torch version and CPU/CUDA variant, cached in $cache/wheels (the patches
  # for Python 3.12 and CUDA 12 toolchains are in tools/patch_minkowski.py, with the reasons).
  wheel=$(PINPOINT3D_CACHE="$cache" bash "$root/tools/build_minkowski.sh" "$venv/bin/python" | tail -1) \
    || die "MinkowskiEngine build failed (see above)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$wheel"
  "$venv/bin/python" -c "$me_import" || die "MinkowskiEngine installed but does not import"
fi

# --- the project's own modules and CLI ----------------------------------------------------
if ! "$venv/bin/python" -c 'import pinpoint3d_core' 2>/dev/null || [ ! -x "$venv/bin/pinpoint3d" ]; then
  say "installing the pinpoint3d command (editable)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$root"
fi
say "done"
