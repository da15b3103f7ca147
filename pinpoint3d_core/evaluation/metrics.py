"""
Interactive-segmentation metrics with the reference paper's definitions.

A *sample* is one evaluation target set (the parts of one object, or one or several objects);
``T`` is its number of targets. All numbers are computed at full point resolution.

- sample IoU: mean over the targets k of IoU(pred == k, gt == k);
- x-axis: clicks per target (total clicks / T);
- IoU@k: mean sample IoU at exactly k clicks per target (total clicks == k * T);
- NoC@X: clicks per target of the first step whose sample IoU >= X, else the cap
  (max clicks per target); averaged over samples;
- point-weighted mIoU@k: per-target IoUs averaged with the target's point count as weight.

Unlike the reference, NoC is keyed by sample (every sample counts once); the reference keys it by
scene name + part count, so two samples of one scene with the same part count collapse into one.
"""

from dataclasses import dataclass, field

import numpy as np

IOU_AT = (1, 2, 3, 5, 10)
NOC_AT = (0.50, 0.65, 0.80, 0.85, 0.90)


def target_ious(pred, gt, labels):
    """IoU(pred == k, gt == k) for each label k in ``labels`` (0.0 where both are empty)."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    out = []
    for k in labels:
        p = pred == k
        g = gt == k
        union = np.count_nonzero(p | g)
        out.append(np.count_nonzero(p & g) / union if union else 0.0)
    return np.asarray(out, dtype=np.float64)


def sample_iou(pred, gt, labels=None):
    """Mean IoU over the sample's targets (labels != 0 in ``gt`` unless given)."""
    if labels is None:
        labels = [int(k) for k in np.unique(gt) if k != 0]
    if len(labels) == 0:
        return 0.0
    return float(target_ious(pred, gt, labels).mean())


@dataclass
class SampleCurve:
    """
    IoU after every interaction step of one sample.

    ``clicks[i]`` is the total click count after step i; ``target_iou[i]`` the per-target IoUs
    then; ``object_iou[i]`` the IoU of the target object's whole mask (part protocols), if known.
    """

    sample_id: str
    scene: str
    labels: list
    target_sizes: list
    max_clicks_per_target: int
    clicks: list = field(default_factory=list)
    target_iou: list = field(default_factory=list)
    object_iou: list = field(default_factory=list)

    @property
    def num_targets(self):
        """Return the number of targets T (the x-axis divisor)."""
        return len(self.labels)

    def add(self, clicks, ious, object_iou=None):
        """Record one step."""
        self.clicks.append(int(clicks))
        self.target_iou.append([float(v) for v in ious])
        if object_iou is not None:
            self.object_iou.append(float(object_iou))

    def ious(self):
        """Sample IoU per step."""
        return [float(np.mean(v)) if len(v) else 0.0 for v in self.target_iou]

    def step_at(self, k):
        """Index of the step with exactly k clicks per target, or None."""
        want = k * self.num_targets
        for i, c in enumerate(self.clicks):
            if c == want:
                return i
        return None

    def iou_at(self, k):
        """Sample IoU at exactly k clicks per target (None if never logged)."""
        i = self.step_at(k)
        return None if i is None else self.ious()[i]

    def noc(self, threshold):
        """Clicks per target to reach ``threshold`` sample IoU, capped at the click budget."""
        for c, v in zip(self.clicks, self.ious()):
            if c > 0 and v >= threshold:
                return min(c / self.num_targets, float(self.max_clicks_per_target))
        return float(self.max_clicks_per_target)


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float('nan')


def summarize(curves, iou_at=IOU_AT, noc_at=NOC_AT):
    """Aggregate metrics over samples; IoUs in percent, NoC in clicks per target."""
    out = {'samples': len(curves),
           'targets': int(sum(c.num_targets for c in curves))}
    for k in iou_at:
        out[f'IoU@{k}'] = 100.0 * _mean([c.iou_at(k) for c in curves])
    for thr in noc_at:
        out[f'NoC@{round(thr * 100)}'] = _mean([c.noc(thr) for c in curves])
    for k in iou_at:
        num = den = 0.0
        for c in curves:
            i = c.step_at(k)
            if i is None:
                continue
            sizes = np.asarray(c.target_sizes, dtype=np.float64)
            num += float(np.dot(sizes, c.target_iou[i]))
            den += float(sizes.sum())
        out[f'pw-mIoU@{k}'] = 100.0 * num / den if den else float('nan')
    if any(c.object_iou for c in curves):
        for k in iou_at:
            vals = []
            for c in curves:
                i = c.step_at(k)
                if i is not None and i < len(c.object_iou):
                    vals.append(c.object_iou[i])
            out[f'objIoU@{k}'] = 100.0 * _mean(vals)
    return out


def format_table(summary, title=''):
    """Format a summary as the plain-text table the CLI prints."""
    keys = [k for k in summary if k not in ('samples', 'targets')]
    lines = []
    if title:
        lines.append(title)
    lines.append(f"samples {summary['samples']}, targets {summary['targets']}")
    width = max(len(k) for k in keys) if keys else 0
    for k in keys:
        v = summary[k]
        if k.startswith('NoC'):
            unit = ' clicks/target'
        elif k.endswith('_ms'):
            unit = ' ms'
        elif k.endswith('_s'):
            unit = ' s'
        else:
            unit = ' %'
        lines.append(f'  {k:<{width}}  {v:9.2f}{unit}')
    return '\n'.join(lines)
