#!/usr/bin/env bash
# Reproduce every evaluation table of docs/model.md from the shipped checkpoints, in one command:
#
#   tools/model_card.sh                          # full run (slow on CPU: tens of minutes)
#   MODEL_CARD_LIMIT=4 MODEL_CARD_MAX_CLICKS=3 tools/model_card.sh    # quick variant
#
# Environment (all optional):
#   CHECKPOINT_INDOOR   indoor model       (default weights/pinpoint3d_small.pt)
#   CHECKPOINT_LIDAR    LiDAR model        (default weights/pinpoint3d_small_lidar.pt)
#   MODEL_CARD_OUT      output folder      (default out/model_card)
#   MODEL_CARD_LIMIT    samples per evaluation (default: all)
#   MODEL_CARD_MAX_CLICKS  clicks per target (default 10, as in docs/model.md)
#   MODEL_CARD_INDOOR_COUNT / MODEL_CARD_LIDAR_COUNT  held-out scenes (default 24 / 16)
#   MODEL_CARD_REUSE_SCENES=1  keep scenes already in OUT/scenes (default: regenerate)
#   MODEL_CARD_ABLATIONS=0     skip the inference-time ablations
#   MODEL_CARD_SYNTHETIC=0     only the real development set (no synthetic scenes)
#   MODEL_CARD_REAL_DEV=0      skip the real development set
#   MODEL_CARD_NICE     nice level (default 10); OMP_NUM_THREADS defaults to 1
#   MODEL_CARD_JOBS     evaluations run at once (default 1; one per core is the useful maximum)
#
# Writes OUT/<evaluation>/<model>/summary.json (+ per_target.csv, curves.csv), OUT/model_card.md
# (the markdown table that is also printed) and OUT/commands.txt (every command that ran).
set -eo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
. "$root/tools/env.sh"
set -u
cd "$root"

ckpt_indoor="${CHECKPOINT_INDOOR:-$root/weights/pinpoint3d_small.pt}"
ckpt_lidar="${CHECKPOINT_LIDAR:-$root/weights/pinpoint3d_small_lidar.pt}"
out="${MODEL_CARD_OUT:-$root/out/model_card}"
limit="${MODEL_CARD_LIMIT:-}"
max_clicks="${MODEL_CARD_MAX_CLICKS:-10}"
n_indoor="${MODEL_CARD_INDOOR_COUNT:-24}"
n_lidar="${MODEL_CARD_LIDAR_COUNT:-16}"
nice_level="${MODEL_CARD_NICE:-10}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export OMP_WAIT_POLICY=PASSIVE
real_data="${PINPOINT3D_REAL_DATA:-$(cd "$root/.." && pwd)/shared/data}"

for f in "$ckpt_indoor" "$ckpt_lidar"; do
  if [ ! -f "$f" ]; then
    echo "model_card: checkpoint $f not found (set CHECKPOINT_INDOOR / CHECKPOINT_LIDAR)" >&2
    exit 1
  fi
done

mkdir -p "$out"
: > "$out/commands.txt"
# The source checkout's package (python -m from the repository root), never a stale install.
pp() {
  echo "pinpoint3d $*" >> "$out/commands.txt"
  nice -n "$nice_level" python -m pinpoint3d_core.cli "$@"
}

scenes_indoor="$out/scenes/indoor"
scenes_lidar="$out/scenes/lidar"
if [ "${MODEL_CARD_REUSE_SCENES:-0}" != 1 ]; then
  rm -rf "$scenes_indoor" "$scenes_lidar"
fi
[ "${MODEL_CARD_SYNTHETIC:-1}" = 0 ] || [ -d "$scenes_indoor" ] || pp synth --kind indoor --size normal --count "$n_indoor" \
  --seed 900000 --out "$scenes_indoor"
[ "${MODEL_CARD_SYNTHETIC:-1}" = 0 ] || [ -d "$scenes_lidar" ] || pp synth --kind lidar --count "$n_lidar" --seed 900000 \
  --out "$scenes_lidar"

common=(--max-clicks "$max_clicks" --device cpu)
# A sample limit spreads over scenes: two samples per indoor room, three per LiDAR sweep (the
# object protocol makes one sample per object, which would otherwise all come from scene 1).
per_indoor=(--samples-per-scene 2)
per_lidar=(--samples-per-scene 3)
if [ -n "$limit" ]; then common+=(--limit "$limit"); fi

jobs_max="${MODEL_CARD_JOBS:-1}"
running=0
evaluate() {   # evaluate NAME ARGS...: results in OUT/NAME/<model>/summary.json
  local name="$1"; shift
  echo "== $name" >&2
  if [ "$jobs_max" -le 1 ]; then
    pp evaluate "$@" "${common[@]}" --out "$out/$name" > "$out/$name.log"
    tail -n 30 "$out/$name.log" >&2
    return
  fi
  # Parallel: at most MODEL_CARD_JOBS evaluations at once, each on one thread.
  if [ "$running" -ge "$jobs_max" ]; then wait -n; running=$((running - 1)); fi
  { pp evaluate "$@" "${common[@]}" --out "$out/$name" > "$out/$name.log" \
      && echo "== $name done" >&2; } &
  running=$((running + 1))
}

rm -rf "$out"/indoor_* "$out"/lidar_* "$out"/real_* "$out"/ablation_* "$out"/fourth_* "$out"/dev_*
# Real development set first (evaluation/realdev.py): the validation split decides; the
# learned preset weights against the non-learned baseline tuned for the same preset.
if [ "${MODEL_CARD_REAL_DEV:-1}" != 0 ]; then
  for fam in tabletop lidar; do
    evaluate "dev_${fam}_val" --real-dev "$fam" --split val --model preset --model baseline
    evaluate "dev_${fam}_train" --real-dev "$fam" --split train --model preset --model baseline
  done
  evaluate dev_tabletop_val_1cm --real-dev tabletop --split val --click-voxel 0.01 \
    --model preset --model baseline
fi
if [ "${MODEL_CARD_SYNTHETIC:-1}" != 0 ]; then
# The shipped weights as they ship (geodesic object masks, decoder parts), then the click
# decoder's own object masks on the same weights (*_decoder rows; the ablations below are all
# on the decoder path, which is what their flags change).
dec=(--override object_masks=decoder)
evaluate indoor_all-part_decoder --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol all-part \
  --model "$ckpt_indoor" "${dec[@]}"
evaluate indoor_object_decoder --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol object \
  --objects-per-sample 1 --model "$ckpt_indoor" "${dec[@]}"
evaluate lidar_object_decoder --scenes "$scenes_lidar" "${per_lidar[@]}" --protocol object \
  --objects-per-sample 1 --model "$ckpt_lidar" "${dec[@]}"
evaluate indoor_all-part --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol all-part \
  --model "$ckpt_indoor" --model baseline
evaluate indoor_random-part --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol random-part \
  --model "$ckpt_indoor" --model baseline
evaluate indoor_object --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol object --objects-per-sample 1 \
  --model "$ckpt_indoor" --model baseline
evaluate lidar_object --scenes "$scenes_lidar" "${per_lidar[@]}" --protocol object --objects-per-sample 1 \
  --model "$ckpt_lidar" --model baseline
evaluate lidar_all-part --scenes "$scenes_lidar" "${per_lidar[@]}" --protocol all-part \
  --model "$ckpt_lidar" --model baseline
PINPOINT3D_REAL_DATA="$real_data" evaluate real_object --real --objects-per-sample 1 \
  --model "$ckpt_lidar" --model baseline

if [ "${MODEL_CARD_ABLATIONS:-1}" != 0 ]; then
  # Inference-time ablations: each decision flag of the checkpoint's config flipped.
  # (scene_norm_stats: batch-norm statistics of the scene itself instead of running averages.)
  for flag in tam_all_layers gate_parts_by_object part_queries_from_refined scene_norm_stats; do
    value=$(python - "$ckpt_indoor" "$flag" <<'EOF'
import sys
from pinpoint3d_core.model.checkpoint import read_checkpoint
from pinpoint3d_core.model.config import ModelConfig
config = ModelConfig.from_dict(read_checkpoint(sys.argv[1])['config'])
print(str(not getattr(config, sys.argv[2])).lower())
EOF
)
    evaluate "ablation_${flag}" --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol all-part \
      --model "$ckpt_indoor" "${dec[@]}" --override "$flag=$value"
  done
  # The focus box off: the backbone sees the whole room / sweep (docs/model.md, "Focus box").
  evaluate ablation_focus_half_extent --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol all-part \
    --model "$ckpt_indoor" "${dec[@]}" --override focus_half_extent=0
  PINPOINT3D_REAL_DATA="$real_data" evaluate ablation_focus_half_extent_real --real \
    --objects-per-sample 1 --model "$ckpt_lidar" "${dec[@]}" --override focus_half_extent=0
  # Connectivity off: every voxel the decoder labels is kept (docs/model.md, "Mask
  # connectivity").
  evaluate ablation_component_gap_voxels --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol all-part \
    --model "$ckpt_indoor" "${dec[@]}" --override component_gap_voxels=0
  evaluate ablation_component_gap_voxels_lidar --scenes "$scenes_lidar" "${per_lidar[@]}" --protocol object \
    --objects-per-sample 1 --model "$ckpt_lidar" "${dec[@]}" --override component_gap_voxels=0
  PINPOINT3D_REAL_DATA="$real_data" evaluate ablation_component_gap_voxels_real --real \
    --objects-per-sample 1 --model "$ckpt_lidar" "${dec[@]}" --override component_gap_voxels=0
  # Part prior off: the part decoder alone splits an object (docs/model.md, "Part prior").
  # Part protocols only: neither the prior nor the claim ever changes an object mask.
  evaluate ablation_part_prior_voxels --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol all-part \
    --model "$ckpt_indoor" "${dec[@]}" --override part_prior_voxels=0
  evaluate ablation_part_prior_voxels_lidar --scenes "$scenes_lidar" "${per_lidar[@]}" --protocol all-part \
    --model "$ckpt_lidar" "${dec[@]}" --override part_prior_voxels=0
  # Object logit bias on, as the synthetic validation sets chose it (docs/model.md, "Object
  # logit bias"): it helps on synthetic scenes and hurts on the real scans, so it ships off.
  evaluate ablation_object_logit_bias --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol object \
    --objects-per-sample 1 --model "$ckpt_indoor" "${dec[@]}" --override object_logit_bias=6
  evaluate ablation_object_logit_bias_lidar --scenes "$scenes_lidar" "${per_lidar[@]}" --protocol object \
    --objects-per-sample 1 --model "$ckpt_lidar" "${dec[@]}" --override object_logit_bias=6
  PINPOINT3D_REAL_DATA="$real_data" evaluate ablation_object_logit_bias_real --real \
    --objects-per-sample 1 --model "$ckpt_lidar" "${dec[@]}" --override object_logit_bias=6
  # The fourth release's inference on the same weights: the click claim instead of the prior.
  fourth=("${dec[@]}" --override click_claim_voxels=3 --override part_prior_voxels=0)
  evaluate fourth_release --scenes "$scenes_indoor" "${per_indoor[@]}" --protocol all-part \
    --model "$ckpt_indoor" "${fourth[@]}"
  evaluate fourth_release_lidar --scenes "$scenes_lidar" "${per_lidar[@]}" --protocol all-part \
    --model "$ckpt_lidar" "${fourth[@]}"
fi

fi

# Parallel mode: every evaluation must have succeeded (a failed one fails the card).
while [ "$running" -gt 0 ]; do wait -n; running=$((running - 1)); done

python - "$out" <<'EOF' | tee "$out/model_card.md"
import glob
import json
import os
import sys

out = sys.argv[1]
# Real development set: one row per model, and for tabletop one row per mOSD group.
from pinpoint3d_core.evaluation.realdev import mosd_group
dev = ['dev_tabletop_val', 'dev_tabletop_val_1cm', 'dev_lidar_val', 'dev_tabletop_train',
       'dev_lidar_train']
print('Real development set (validation rows decide; train rows are the tuning split):\n')
print('| evaluation | model | scans / targets | IoU@1 | IoU@3 | IoU@5 | NoC@80 | NoC@85 |')
print('|---|---|---|---|---|---|---|---|')


def at(sample, k):
    want = k * len(sample['targets'])
    for n, v in zip(sample['clicks'], sample['iou']):
        if n == want:
            return v
    return None


def mean(xs):
    xs = [x for x in xs if x is not None]
    return 100.0 * sum(xs) / len(xs) if xs else float('nan')


def summaries(name):
    """The summary.json contents of one evaluation, the learned model first, then the baseline."""
    files = sorted(glob.glob(os.path.join(out, name, '**', 'summary.json'), recursive=True))
    found = [json.load(open(p)) for p in files]
    return sorted(found, key=lambda d: d['model'] == 'baseline')


for name in dev:
    for data in summaries(name):
        s = data['summary']
        print(f"| {name} | {data['model']} | {s['samples']} / {s['targets']} | "
              + ' | '.join(f"{s[f'IoU@{k}']:.1f}" for k in (1, 3, 5)) + ' | '
              + ' | '.join(f"{s[f'NoC@{k}']:.2f}" for k in (80, 85)) + ' |')
        if name.startswith('dev_tabletop_val'):
            groups = {}
            for sample in data['samples']:
                scene = sample['id'].split('/')[0]
                groups.setdefault(mosd_group(scene), []).append(sample)
            for g, samples in sorted(groups.items()):
                print(f"| {name} ({g}) | {data['model']} | {len(samples)} / "
                      f"{sum(len(x['targets']) for x in samples)} | "
                      + ' | '.join(f'{mean(at(x, k) for x in samples):.1f}' for k in (1, 3, 5))
                      + ' | | |')
print()
if not glob.glob(os.path.join(out, 'indoor_*')) + glob.glob(os.path.join(out, 'lidar_*')):
    sys.exit(0)     # MODEL_CARD_SYNTHETIC=0
print('Synthetic scenes (held-out seeds; not the product accuracy):\n')
order = ['indoor_all-part', 'indoor_all-part_decoder', 'indoor_random-part', 'indoor_object',
         'indoor_object_decoder', 'lidar_object', 'lidar_object_decoder', 'lidar_all-part',
         'real_object', 'ablation_tam_all_layers',
         'ablation_gate_parts_by_object', 'ablation_part_queries_from_refined',
         'ablation_scene_norm_stats', 'ablation_focus_half_extent',
         'ablation_focus_half_extent_real', 'ablation_component_gap_voxels',
         'ablation_component_gap_voxels_lidar', 'ablation_component_gap_voxels_real',
         'ablation_part_prior_voxels', 'ablation_part_prior_voxels_lidar',
         'ablation_object_logit_bias', 'ablation_object_logit_bias_lidar',
         'ablation_object_logit_bias_real', 'fourth_release', 'fourth_release_lidar']
cols = ['IoU@1', 'IoU@3', 'IoU@5', 'NoC@50', 'NoC@65', 'NoC@80', 'NoC@85', 'NoC@90']
print('| evaluation | model | samples / targets | ' + ' | '.join(cols)
      + ' | objIoU@1 / 3 / 5 | decode ms/click |')
print('|' + '---|' * (len(cols) + 5))
for name in order:
    for data in summaries(name):
        s = data['summary']
        obj = ' / '.join(f"{s[f'objIoU@{k}']:.1f}" for k in (1, 3, 5)
                         if f'objIoU@{k}' in s) or '-'
        vals = ' | '.join(f'{s[c]:.1f}' if c.startswith('IoU') else f'{s[c]:.2f}'
                          for c in cols)
        print(f"| {name} | {data['model']} | {s['samples']} / {s['targets']} | {vals} | "
              f"{obj} | {s.get('mean_decode_ms', float('nan')):.0f} |")
print()
print(f"max clicks per target {data['max_clicks']}, sample limit {data['limit']}; "
      f'summaries under {out}')
EOF
