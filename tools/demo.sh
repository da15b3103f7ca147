#!/usr/bin/env bash
# `make demo`: a synthetic scan played over DDS, the node, and a scripted planner client, each in
# its own process. Writes out/demo/{segmentation.ply,segmentation.png,summary.json}.
# Options (environment): DEMO_SENSOR=indoor|lidar, DEMO_SEED=7, DEMO_SIZE=normal|small,
# DEMO_CHECKPOINT=<file.pt>, DEMO_OUT=out/demo, DEMO_TIMEOUT=300 (seconds for the interaction).
set -eo pipefail   # not -u: colcon's setup scripts read unset variables
cd "$(dirname "$0")/.."
. tools/env.sh

sensor="${DEMO_SENSOR:-indoor}"
out="${DEMO_OUT:-out/demo}"
timeout_s="${DEMO_TIMEOUT:-300}"
config="config/indoor_rgbd.yaml"
[ "$sensor" = lidar ] && config="config/kitti_lidar.yaml"
checkpoint="${DEMO_CHECKPOINT:-}"
[ -z "$checkpoint" ] && [ "$sensor" = lidar ] && checkpoint=pinpoint3d_small_lidar.pt
mkdir -p "$out"
rm -f "$out/summary.json" "$out/segmentation.ply" "$out/segmentation.png"

echo "demo: ROS_DOMAIN_ID=$ROS_DOMAIN_ID, discovery $ROS_AUTOMATIC_DISCOVERY_RANGE, sensor $sensor"
if [ -z "$checkpoint" ] && [ ! -f weights/pinpoint3d_small.pt ]; then
  echo "demo: NOTE: weights/pinpoint3d_small.pt does not exist yet; the node runs the indoor" \
       "preset's non-learned baseline instead (its log and answers say so)."
fi

python -m pinpoint3d_ros.scene_player --generate-only --sensor "$sensor" \
  --seed "${DEMO_SEED:-7}" --size "${DEMO_SIZE:-normal}" --save "$out/scene.npz"

pids=()
stop_children() {
  # SIGINT lets rclpy shut down cleanly; SIGKILL only if a child ignores it for 5 s.
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop_children EXIT INT TERM

node_args=(--ros-args --params-file "$config")
[ -n "$checkpoint" ] && node_args+=(-p "checkpoint:=$checkpoint")
python -m pinpoint3d_ros.node "${node_args[@]}" > "$out/node.log" 2>&1 &
pids+=($!)
python -m pinpoint3d_ros.scene_player --npz "$out/scene.npz" --rate 1.0 \
  > "$out/scene_player.log" 2>&1 &
pids+=($!)

rc=0
timeout --signal=INT --kill-after=10 "$timeout_s" \
  python -m pinpoint3d_ros.demo_planner --scene "$out/scene.npz" --out "$out" \
  --timeout "$((timeout_s / 2))" || rc=$?
stop_children
if [ "$rc" -ne 0 ]; then
  echo "demo: the planner failed (exit $rc); last node log lines ($out/node.log):" >&2
  grep -v '^\s' "$out/node.log" | tail -n 8 >&2
  if [ -f "$out/summary.json" ]; then
    echo "demo: partial results (the steps that succeeded) in $(cd "$out" && pwd)" >&2
  fi
  exit "$rc"
fi
echo "demo: done. Results in $(cd "$out" && pwd): segmentation.ply, segmentation.png," \
     "summary.json (node log: node.log)"
