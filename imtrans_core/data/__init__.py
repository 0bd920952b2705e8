"""Volumes and what is done to them before a network sees them.

``volume`` (voxels + geometry), ``io`` (files), ``intensity`` (windows to [-1, 1]),
``preprocess`` (N4, resampling, masks), ``register`` (rigid registration), ``sources``
(what a dataset builds), ``slices`` (volumes <-> cached slice stacks) and ``contract``
(the generators' input contract). Imports neither torch nor a plugin.
"""
