"""
Procedural part-annotated scenes and simulated sensors (indoor RGB-D, outdoor LiDAR).

Use :func:`generate_scene`; it returns a :class:`pinpoint3d_core.scene.Scene`.
"""

from pinpoint3d_core.synth.generate import generate_scene, generate_scene_and_world

__all__ = ['generate_scene', 'generate_scene_and_world']
