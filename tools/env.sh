# Source this file (". tools/env.sh"): the one environment every pinpoint3d process runs in.
# It never installs anything (that is tools/setup.sh); it only activates and configures.
# Network rule: DDS discovery stays on this machine (LOCALHOST range) in a private domain.

_pp_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$_pp_root/.venv/bin/python" ]; then
  echo "pinpoint3d: no .venv yet: run 'make setup' first" >&2
  unset _pp_root
  return 1 2>/dev/null || exit 1
fi
# .venv is a link to the real venv outside the checkout (see tools/setup.sh); activate the real
# path so that no tool ever sees a venv path inside the package source tree.
. "$(readlink -f "$_pp_root/.venv")/bin/activate"
case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}";; esac
case ":${CMAKE_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}";; esac
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# ROS_LOCALHOST_ONLY is ignored by Kilted; this is the setting that keeps discovery on loopback.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
# A private domain: stable for one checkout (so several shells of it talk to each other),
# different between checkouts. Override by exporting ROS_DOMAIN_ID before sourcing.
if [ -z "${ROS_DOMAIN_ID:-}" ]; then
  export ROS_DOMAIN_ID=$(( $(printf '%s' "$_pp_root" | cksum | cut -d' ' -f1) % 100 + 1 ))
fi
# Big shared-memory segments so 100k-300k point clouds also arrive with best-effort QoS.
export FASTDDS_DEFAULT_PROFILES_FILE="$_pp_root/config/fastdds_large_shm.xml"
export PYTHONUNBUFFERED=1
# Idle OpenMP threads must sleep, not spin: with the default policy torch/MinkowskiEngine worker
# threads steal the two cores from every other process (decode measured 20-60x slower).
export OMP_WAIT_POLICY=PASSIVE
if [ -f "$_pp_root/install/setup.bash" ]; then
  # colcon's setup scripts reference unset variables; never source them under `set -u`.
  _pp_u=$(set +o | grep nounset); set +u
  . "$_pp_root/install/setup.bash"
  eval "$_pp_u"; unset _pp_u
fi
export PINPOINT3D_ROOT="$_pp_root"
unset _pp_root
