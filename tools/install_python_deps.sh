#!/usr/bin/env bash
# The pip step for a stock ROS 2 system (Jazzy or Kilted on Ubuntu 24.04, Python 3.12): the
# Python packages that rosdep cannot install (package.xml says why) into a virtual environment
# that sees the system's ROS and apt packages, or into the system Python if you insist.
#
#   torch            CPU wheel by default (TORCH_INDEX_URL selects another build, e.g. CUDA)
#   MinkowskiEngine  0.5.4 built from source once (tools/build_minkowski.sh), cached by torch
#                    version and CPU/CUDA variant in $PINPOINT3D_CACHE/wheels
#   open3d           synthetic scenes and PLY/PCD reading (open3d-cpu on x86_64)
#   rosbags          bag replay (pinpoint3d_ros/replay.py)
#
# Usage (after `rosdep install`, with /opt/ros/<distro>/setup.bash sourced):
#   tools/install_python_deps.sh [--venv DIR]     default DIR: ~/.venvs/pinpoint3d
#   tools/install_python_deps.sh --system         pip --user --break-system-packages (PEP 668)
#   tools/install_python_deps.sh --dry-run ...    print what would run, change nothing
# Then, in every shell that builds or runs the package:  source DIR/bin/activate
# Variables: TORCH_SPEC (default: requirements.txt's torch pin), TORCH_INDEX_URL (default: the
# PyTorch CPU wheel index; '' = PyPI's default torch), ME_CUDA (0/1/auto), PINPOINT3D_CACHE,
# MAX_JOBS.
set -eo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
say() { printf '[deps] %s\n' "$*"; }
die() { printf '[deps] ERROR: %s\n' "$*" >&2; exit 1; }

mode=venv
venv="$HOME/.venvs/pinpoint3d"
dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv="${2:?--venv needs a directory}"; shift 2;;
    --system) mode=system; shift;;
    --dry-run) dry=1; shift;;
    -h|--help) sed -n '2,21p' "$0"; exit 0;;
    *) die "unknown argument $1 (see --help)";;
  esac
done
run() { if [ "$dry" = 1 ]; then printf '[deps] would run:'; printf ' %q' "$@"; printf '\n'; else "$@"; fi; }

# One place for the versions: requirements.txt (what `make` installs and CI tests).
pin() { grep -E "^$1==" "$root/requirements.txt" | head -1 | sed -E 's/[[:space:]]*#.*//'; }
torch_spec="${TORCH_SPEC:-$(pin torch)}"
torch_index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
if [ "$(uname -m)" = x86_64 ]; then open3d_spec="$(pin open3d-cpu)"; else open3d_spec="open3d==$(pin open3d-cpu | cut -d= -f3)"; fi
rosbags_spec="$(pin rosbags)"
[ -n "$torch_spec" ] && [ -n "$rosbags_spec" ] && [ -n "$open3d_spec" ] || die "requirements.txt lacks a torch, open3d-cpu or rosbags pin"

sys_py="$(command -v python3)" || die "python3 not found"
"$sys_py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || die "Python >= 3.10 is needed"
[ -n "${ROS_DISTRO:-}" ] || say "NOTE: ROS_DISTRO is not set; source /opt/ros/<distro>/setup.bash first so the venv sees rclpy"
"$sys_py" -c 'import rclpy' 2>/dev/null || say "NOTE: rclpy does not import with $sys_py (ROS environment not sourced?)"

# Build prerequisites of MinkowskiEngine and the venv (Debian/Ubuntu package names).
missing=()
for pkg in python3-venv python3-dev g++ libopenblas-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then run apt-get update -qq; run apt-get install -y "${missing[@]}"
  else die "missing system packages: sudo apt install ${missing[*]}"; fi
fi

if [ "$mode" = venv ]; then
  if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv (with the system site packages, so rclpy, numpy and the ROS messages stay visible)"
    run "$sys_py" -m venv --system-site-packages "$venv"
    run touch "$venv/COLCON_IGNORE"   # keeps colcon from crawling the venv for packages
  fi
  py="$venv/bin/python"
  pip_args=()
else
  py="$sys_py"
  pip_args=(--user --break-system-packages)
  say "installing into the system Python (--user); a venv (the default) is the safer choice"
fi

# The ROS message packages of the distro are built against the system numpy (1.26 on Noble):
# pip must never replace it, or importing sensor_msgs fails with a numpy ABI error.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
npver="$("$sys_py" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
if [ -n "$npver" ]; then echo "numpy==$npver" > "$constraints"; say "keeping the system numpy $npver"; fi

pipi=("$py" -m pip install --disable-pip-version-check -c "$constraints" "${pip_args[@]}")
say "torch: $torch_spec${torch_index:+ from $torch_index}"
run "${pipi[@]}" ${torch_index:+--index-url "$torch_index"} "$torch_spec"
say "open3d and rosbags: $open3d_spec $rosbags_spec"
run "${pipi[@]}" "$open3d_spec" "$rosbags_spec"

say "MinkowskiEngine 0.5.4 (built once per torch version; about 8 minutes on 2 cores)"
if [ "$dry" = 1 ]; then
  run env TORCH_INDEX_URL="$torch_index" bash "$root/tools/build_minkowski.sh" "$py"
else
  wheel=$(TORCH_INDEX_URL="$torch_index" bash "$root/tools/build_minkowski.sh" "$py" | tail -1) \
    || die "MinkowskiEngine build failed (see above)"
  run "${pipi[@]}" --no-deps "$wheel"
  "$py" -c 'import collections, collections.abc; collections.Sequence = collections.abc.Sequence
import MinkowskiEngine, open3d, rosbags, torch
print("[deps] torch", torch.__version__, "| MinkowskiEngine", MinkowskiEngine.__version__,
      "| open3d", open3d.__version__)' || die "the installed packages do not import"
fi
if [ "$mode" = venv ]; then
  say "done. In every shell that builds or runs pinpoint3d:"
  say "  source /opt/ros/\$ROS_DISTRO/setup.bash && source $venv/bin/activate"
  say "then: colcon build --packages-select pinpoint3d && source install/setup.bash"
else
  say "done."
fi
