"""The README's session API example (run: python docs/session_example.py)."""

import numpy as np
from pinpoint3d_core.session import Click, Segmenter
from pinpoint3d_core.synth import generate_scene

scene = generate_scene(kind='indoor', seed=7)   # or pinpoint3d_core.scene.read_any('x.ply')
seg = Segmenter.load()                   # shipped weights/pinpoint3d_small.pt, device='auto'
session = seg.start(scene.coords, colors=scene.colors)   # voxelise + backbone once
print(f'{len(scene.coords)} points encoded in {session.encode_ms:.0f} ms')

# Pick an object with parts from the ground truth, click once on it, then once per part.
oid = next(int(k) for k, o in scene.meta['objects'].items() if o['has_parts'])
target = scene.object_ids == oid
inside = np.flatnonzero(target)
session.add_clicks([Click(position=tuple(scene.coords[inside[len(inside) // 2]]), object_id=1)])
pred = session.predict('object')
iou = (target & (pred.object_ids == 1)).sum() / (target | (pred.object_ids == 1)).sum()
print(f'object IoU after 1 click: {iou:.2f} ({pred.decode_ms:.0f} ms)')

parts = np.unique(scene.part_ids[target])
session.add_clicks([Click(index=int(np.flatnonzero(scene.part_ids == p)[0]), object_id=1,
                          part_id=j + 1) for j, p in enumerate(parts)])
pred = session.predict('both')                       # object_ids / part_ids per input point
print('parts predicted:', np.unique(pred.part_ids[pred.object_ids == 1]), pred.part_scores)
session.undo()                                       # drops the last add_clicks batch
session.reset()                                      # no clicks; the encoding stays cached
