"""PNG views of evaluation samples: ground truth next to predictions after k clicks per target."""

import numpy as np

_MAX_POINTS = 40000


def _project(xyz, azimuth_deg=-60.0, elevation_deg=30.0):
    """Orthographic view from the given azimuth/elevation: (u, v, depth)."""
    a = np.deg2rad(azimuth_deg)
    e = np.deg2rad(elevation_deg)
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    u = np.cos(a) * x - np.sin(a) * y
    w = np.sin(a) * x + np.cos(a) * y
    v = np.cos(e) * z - np.sin(e) * w
    depth = np.sin(e) * z + np.cos(e) * w
    return u, v, depth


def _colors(labels):
    import matplotlib
    cmap = matplotlib.colormaps['tab20']
    out = np.tile(np.array([[0.78, 0.78, 0.78, 1.0]]), (len(labels), 1))
    fg = labels > 0
    out[fg] = cmap(((labels[fg] - 1) % 20) / 19.0)
    return out


def render_sample(path, coords, gt, predictions, title='', focus=True, margin=0.5):
    """
    Write a PNG: ground truth, then one panel per {clicks per target: labels}.

    With ``focus`` the view is cropped to the targets' bounding box plus ``margin`` metres
    (parts of one object are unreadable in a whole-room view).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    coords = np.asarray(coords, dtype=np.float64)
    keep = np.all(np.isfinite(coords), axis=1)
    if focus and (gt > 0).any():
        lo = coords[gt > 0].min(axis=0) - margin
        hi = coords[gt > 0].max(axis=0) + margin
        keep &= np.all((coords >= lo) & (coords <= hi), axis=1)
    idx = np.flatnonzero(keep)
    if len(idx) > _MAX_POINTS:
        idx = np.sort(np.random.default_rng(0).choice(idx, _MAX_POINTS, replace=False))
    u, v, depth = _project(coords[idx])
    order = np.argsort(depth)[::-1]  # far points first so near ones are drawn on top
    panels = [('ground truth', gt)] + [(f'{k} click(s)/target', lab)
                                       for k, lab in sorted(predictions.items())]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    size = max(0.5, min(6.0, 8000.0 / max(len(idx), 1)))
    for ax, (name, lab) in zip(axes[0], panels):
        lab = np.asarray(lab)[idx]
        ax.scatter(u[order], v[order], c=_colors(lab[order]), s=size, linewidths=0)
        if name != 'ground truth':
            ok = (lab == np.asarray(gt)[idx])
            name += f'  (point acc. {100 * ok.mean():.0f}%)'
        ax.set_title(name, fontsize=9)
        ax.set_aspect('equal')
        ax.axis('off')
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
