"""
A scripted client that uses the node the way a manipulation planner would.

It picks the object with the most parts in the played scene, asks for the object with one
click, then for each part with one click on it, and scores the answers against the scene's
ground truth. Results: a labelled PLY, a PNG picture (with the picked object's box, what a
grasp planner would use) and a JSON summary in ``--out``.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from pinpoint3d_core.scene import write_labelled_ply

# Exit codes: 0 = every request answered success; 1 = a request failed; 2 = node not found.
SERVICE = '/pinpoint3d_node/click_segment'


def pick_target(scene):
    """Return (object_id, [part ids]): the largest object of <= 6 m with 2-4 parts."""
    best = None
    objects_meta = getattr(scene, 'meta', {}).get('objects', {})
    for obj in np.unique(scene.object_ids[scene.object_ids > 0]):
        if objects_meta.get(str(int(obj)), {}).get('stuff'):
            continue   # walls, floors, buildings: nothing a planner would pick
        mask = scene.object_ids == obj
        parts = [int(p) for p in np.unique(scene.part_ids[mask]) if p > 0]
        pts = scene.coords[mask]
        small = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0))) <= 6.0   # not a building
        key = (2 <= len(parts) <= 4, small, len(parts) > 0, int(mask.sum()))
        if best is None or key > best[0]:
            best = (key, int(obj), parts)
    if best is None:
        raise SystemExit('demo_planner: the scene has no labelled objects')
    return best[1], best[2]


def interior_point(points, mask):
    """Return the index of the masked point nearest the mask's median (a stable, inner click)."""
    idx = np.flatnonzero(mask)
    centre = np.median(points[idx], axis=0)
    return int(idx[np.argmin(np.linalg.norm(points[idx] - centre, axis=1))])


def iou(a, b):
    """Return the intersection over union of two boolean masks (0 when both are empty)."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def camera_frame(scene):
    """Return True for clouds in a camera optical frame (x right, y down, z forward)."""
    meta = getattr(scene, 'meta', None) or {}
    return meta.get('kind') == 'tabletop' or 'optical' in str(meta.get('frame', ''))


def write_png(path, points, gt_colors, pred_colors, target_mask, title,
              columns=('ground truth', 'prediction'), boxes=(), optical=False):
    """
    Draw the scene and the target: reference vs prediction, with the target's boxes.

    Room and street scans (z up) are seen from above and from the side; camera-frame clouds
    (``optical``: tabletop frames) as the camera sees them (x right, y down) and from the side.
    ``boxes``: (centre, size, style) axis-aligned boxes drawn in every panel.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    finite = np.isfinite(points).all(axis=1)
    if optical:
        around = finite & _near(points, target_mask, 0.25)
        near = finite & _near(points, target_mask, 0.05)
        views = ((0, 1, around, 'target and 25 cm around, camera view'),
                 (2, 1, near, 'target object from the side'))
    else:
        around = finite & _near(points, target_mask, 4.0)
        near = finite & _near(points, target_mask, 0.3)
        views = ((0, 1, around, 'target and 4 m around, from above'),
                 (0, 2, near, 'target object from the side'))
    fig, axes = plt.subplots(2, 2, figsize=(12, 10))
    for row, (a, b, mask, label) in enumerate(views):
        for col, (colors, name) in enumerate(zip((gt_colors, pred_colors), columns)):
            ax = axes[row, col]
            depth = 3 - a - b
            order = np.argsort(points[mask, depth])   # draw far points first
            if optical:
                order = order[::-1]                   # the camera looks along +z
            p, c = points[mask][order], colors[mask][order]
            ax.scatter(p[:, a], p[:, b], c=c / 255.0, s=1.0 if row == 0 else 2, linewidths=0)
            for centre, size, style in boxes:
                lo = np.asarray(centre, float) - np.asarray(size, float) / 2
                ax.add_patch(Rectangle((lo[a], lo[b]), size[a], size[b], fill=False, **style))
            ax.set_aspect('equal' if row == 0 or optical else 'auto')
            if optical:
                ax.invert_yaxis()                     # y points down in the image
            ax.set_title(f'{name}: {label}')
            ax.set_xlabel('xyz'[a] + ' (m)')
            ax.set_ylabel('xyz'[b] + ' (m)')
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format='png')
    plt.close(fig)


def picked_box(response, object_id=1):
    """Return the node's boxes of one answered object (None when it is not in the answer)."""
    for obj in response.objects:
        if obj.object_id != object_id:
            continue
        p, s = obj.box_pose.position, obj.box_size
        out = {'centre': [p.x, p.y, p.z], 'size': [s.x, s.y, s.z], 'points': len(obj.indices)}
        if hasattr(obj, 'oriented_box_size'):   # nodes that also send the oriented box
            q, o, z = obj.oriented_box_pose.position, obj.oriented_box_pose.orientation, \
                obj.oriented_box_size
            out['oriented'] = {'centre': [q.x, q.y, q.z], 'quaternion_xyzw': [o.x, o.y, o.z, o.w],
                               'size': [z.x, z.y, z.z]}
        return out
    return None


def box_of(points):
    """Return the axis-aligned box (centre, size) of points."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return ((lo + hi) / 2).tolist(), (hi - lo).tolist()


def share_inside(points, centre, size):
    """Return the share of points inside an axis-aligned box (a grasp box must hold them)."""
    lo = np.asarray(centre) - np.asarray(size) / 2 - 1e-6
    hi = np.asarray(centre) + np.asarray(size) / 2 + 1e-6
    return float(((points >= lo) & (points <= hi)).all(axis=1).mean()) if len(points) else 0.0


def _near(points, mask, margin):
    low = np.nanmin(points[mask], axis=0) - margin
    high = np.nanmax(points[mask], axis=0) + margin
    with np.errstate(invalid='ignore'):
        return ((points >= low) & (points <= high)).all(axis=1)


def write_outputs(out, points, object_ids, part_ids, colors, summary, draw_png,
                  comment='pinpoint3d demo segmentation'):
    """
    Write segmentation.ply, segmentation.png and summary.json into ``out``; return the paths.

    Each file is written under a temporary name and renamed into place, so a reader that
    polls for them never reads half a file. ``draw_png(path)`` draws the picture.
    """
    from pinpoint3d_core.atomic_files import atomic_path, write_text_atomic
    os.makedirs(out, exist_ok=True)
    paths = {'ply': os.path.join(out, 'segmentation.ply'),
             'png': os.path.join(out, 'segmentation.png'),
             'json': os.path.join(out, 'summary.json')}
    with atomic_path(paths['ply']) as tmp:
        write_labelled_ply(tmp, points, colors, object_ids, part_ids, comment=comment)
    with atomic_path(paths['png']) as tmp:
        draw_png(tmp)
    write_text_atomic(paths['json'], json.dumps(summary, indent=2))
    return paths


def wait_for_scene(path, timeout):
    """
    Return the scene at ``path`` once it exists (the player may still be generating it).

    The player renames a complete file into place (scene_player.save_scene_atomic), so the
    first time the file exists it can be read whole.
    """
    from pinpoint3d_core.scene import load_scene
    deadline = time.monotonic() + timeout
    while not os.path.isfile(path):
        if time.monotonic() > deadline:
            raise SystemExit(f'demo_planner: no scene file {path} after {timeout:g} s')
        time.sleep(0.2)
    return load_scene(path)


def build_parser():
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scene', required=True, help='scene .npz written by scene_player')
    parser.add_argument('--out', default='out/demo', help='output folder')
    parser.add_argument('--service', default=SERVICE)
    parser.add_argument('--timeout', type=float, default=120.0,
                        help='seconds to wait for the scene file, the node and a first cloud')
    return parser


class Planner:
    """Service client with blocking calls (its own executor thread keeps it simple)."""

    def __init__(self, service, timeout):
        import rclpy
        from rclpy.node import Node
        from pinpoint3d.srv import ClickSegment
        self.rclpy = rclpy
        self.srv_type = ClickSegment
        self.node = Node('demo_planner')
        self.client = self.node.create_client(ClickSegment, service)
        self.timeout = timeout

    def wait(self):
        """Wait for the service; returns False after the timeout."""
        return self.client.wait_for_service(timeout_sec=self.timeout)

    def call(self, clicks, reset, granularity='both'):
        """Call ClickSegment on the node's latest cloud; retries while no cloud arrived yet."""
        from pinpoint3d.msg import Click
        request = self.srv_type.Request()
        request.interaction_id = 'demo_planner'   # its own click history on the node
        request.reset = reset
        request.granularity = granularity
        for position, object_id, part_id in clicks:
            c = Click(object_id=object_id, part_id=part_id, positive=True)
            c.position.x, c.position.y, c.position.z = (float(v) for v in position)
            request.clicks.append(c)
        deadline = time.monotonic() + self.timeout
        while True:
            t0 = time.perf_counter()
            future = self.client.call_async(request)
            self.rclpy.spin_until_future_complete(self.node, future, timeout_sec=self.timeout)
            response = future.result()
            if response is None:
                raise SystemExit('demo_planner: no answer from the node within the timeout')
            round_trip = (time.perf_counter() - t0) * 1e3
            if response.success or 'no cloud received yet' not in response.message:
                return response, round_trip
            if time.monotonic() > deadline:
                return response, round_trip
            time.sleep(0.5)


def run(args):
    """Run the scripted interaction; returns the process exit code."""
    from pinpoint3d_ros.conversions import label_colors, labeled_cloud_to_arrays
    scene = wait_for_scene(args.scene, args.timeout)
    target, parts = pick_target(scene)
    name = scene.object_meta(target).get('name') or scene.object_meta(target).get('category')
    planner = Planner(args.service, args.timeout)
    if not planner.wait():
        print(f'demo_planner: service {args.service} not available', file=sys.stderr)
        return 2
    pts = scene.coords
    steps = []
    # 1. the object, one click (object id 1 in the node's numbering)
    click = interior_point(pts, scene.object_ids == target)
    response, rtt = planner.call([(pts[click], 1, 0)], reset=True)
    steps.append(('object', response, rtt))
    # 2. each part of it, one click each (part ids 1..k within object 1)
    for k, part in enumerate(parts, start=1):
        if not response.success:
            break
        click = interior_point(pts, scene.part_ids == part)
        response, rtt = planner.call([(pts[click], 1, k)], reset=False)
        steps.append((f'part {k}', response, rtt))
    failed = [s for s in steps if not s[1].success]
    if failed:
        print(f'demo_planner: {failed[0][0]} request failed: {failed[0][1].message}',
              file=sys.stderr)
    good = [s for s in steps if s[1].success]
    if not good:
        return 1
    final = good[-1][1]
    points, pred_obj, pred_part = labeled_cloud_to_arrays(final.labeled_cloud)
    gt_obj = scene.object_ids == target
    part_iou = {}
    for k, part in enumerate(parts[:len(good) - 1], start=1):
        part_iou[str(k)] = iou((pred_obj == 1) & (pred_part == k), scene.part_ids == part)
    untrained = 'UNTRAINED' in final.message
    baseline = 'NO WEIGHTS' in final.message
    weights = ('UNTRAINED (random) weights' if untrained else
               "NO WEIGHTS: the preset's non-learned baseline" if baseline else
               'trained checkpoint')
    box = picked_box(final)
    gt_centre, gt_size = box_of(pts[gt_obj])
    if box is not None:
        box['holds_target_share'] = share_inside(pts[gt_obj], box['centre'], box['size'])
        # > 1: the box is larger than the object's (stray points widen an axis-aligned box)
        box['volume_vs_truth'] = float(np.prod(box['size']) / max(np.prod(gt_size), 1e-12))
    optical = camera_frame(scene)
    summary = {
        'scene': os.path.abspath(args.scene),
        'points': int(len(pts)),
        'frame': 'camera optical frame (x right, y down, z forward)' if optical else
                 'scene frame (z up)',
        'target': {'scene_object_id': target, 'name': name, 'parts': len(parts)},
        'weights': weights,
        'box': box,
        'ground_truth_box': {'centre': gt_centre, 'size': gt_size},
        'object_iou': iou(pred_obj == 1, gt_obj),
        'part_iou': part_iou,
        'mean_part_iou': float(np.mean(list(part_iou.values()))) if part_iou else None,
        'failed': [{'request': label, 'message': r.message} for label, r, _ in failed],
        'steps': [{'request': label, 'round_trip_ms': round(rtt, 2),
                   'encode_ms': round(r.encode_ms, 2), 'decode_ms': round(r.decode_ms, 2),
                   'message': r.message} for label, r, rtt in steps],
    }
    pred_colors = label_colors(pred_obj, pred_part, 'part', scene.colors)
    gt_local_obj = gt_obj.astype(np.uint32)
    gt_local_part = np.zeros(len(pts), np.uint32)
    for k, part in enumerate(parts, start=1):
        gt_local_part[scene.part_ids == part] = k
    gt_colors = label_colors(gt_local_obj, gt_local_part, 'part', scene.colors)
    title = (f"'{name}' (scene object {target}): object IoU {summary['object_iou']:.2f}, "
             f"mean part IoU {summary['mean_part_iou'] or 0:.2f}"
             + (' - UNTRAINED weights' if untrained else '')
             + (" - the preset's baseline (no weights)" if baseline else '')
             + '; boxes: picked (red), ground truth (dashed)')
    boxes = [(gt_centre, gt_size, {'edgecolor': 'black', 'linestyle': '--', 'linewidth': 1})]
    if box is not None:
        boxes.append((box['centre'], box['size'], {'edgecolor': 'red', 'linewidth': 1.5}))
    paths = write_outputs(
        args.out, points, pred_obj, pred_part, pred_colors, summary,
        lambda path: write_png(path, np.asarray(points, np.float64), gt_colors, pred_colors,
                               gt_obj, title, boxes=boxes, optical=optical))
    for label, r, rtt in steps:
        print(f'demo_planner: {label}: {r.message} (round trip {rtt:.1f} ms)')
    print(f"demo_planner: object IoU {summary['object_iou']:.3f}, part IoU {part_iou}")
    if box is not None:
        print('demo_planner: picked object box centre ({:.3f}, {:.3f}, {:.3f}) m, size '
              '({:.3f}, {:.3f}, {:.3f}) m, holds {:.0%} of the object, {:.1f}x its true '
              'box volume'.format(*box['centre'], *box['size'], box['holds_target_share'],
                                  box['volume_vs_truth']))
    if untrained:
        print('demo_planner: NOTE: the node runs UNTRAINED weights, so IoU is meaningless')
    for kind, path in paths.items():
        print(f'demo_planner: wrote {kind.upper()} {os.path.abspath(path)}')
    return 1 if failed else 0


def main(argv=None):
    """Parse arguments, run the interaction, shut ROS down cleanly."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    argv = sys.argv if argv is None else argv
    args = build_parser().parse_args(rclpy.utilities.remove_ros_args(args=argv)[1:])
    rclpy.init(args=argv)
    try:
        return run(args)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 130
    finally:
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
