"""Smooth implicit shapes for the procedural hip phantom.

Every shape is a signed distance (approximately, in mm): negative inside, zero on
the surface, positive outside. Shapes live in world (LPS, mm) coordinates; the
anatomy poses them before they get here. A shape is only ever evaluated inside
its own bounding box on the voxel grid, so a small muscle costs a small box, not
the whole volume.

Coordinates are passed as three 1-D float32 arrays (the world x of each i, y of
each j, z of each k inside a box) and combined by broadcasting, so a box of
``ni x nj x nk`` voxels never builds a ``(3, ni, nj, nk)`` coordinate array.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

F32 = np.float32
FAR = F32(1e4)  # "outside everything": the value of a field where no shape was evaluated


def rotation(axis: str, degrees: float) -> np.ndarray:
    """3x3 rotation about the world x, y or z axis (right-handed, LPS)."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class Frame:
    """A posed, scaled coordinate frame: ``world = t + s * R @ local``."""

    R: np.ndarray
    t: np.ndarray
    s: float = 1.0

    def point(self, p) -> np.ndarray:
        return self.t + self.s * (self.R @ np.asarray(p, dtype=np.float64))

    def local(self, axis: int, x, y, z) -> np.ndarray:
        """Local coordinate ``axis`` (unscaled mm) of world points given as broadcastable x, y, z."""
        r = (self.R[:, axis] / self.s).astype(F32)
        t = self.t.astype(F32)
        return (x - t[0]) * r[0] + (y - t[1]) * r[1] + (z - t[2]) * r[2]

    def child(self, origin, R_local: np.ndarray) -> Frame:
        """A frame at local point ``origin`` rotated by ``R_local`` (same scale), e.g. a femur in the pelvis."""
        return Frame(self.R @ R_local, self.point(origin), self.s)


@dataclass(frozen=True)
class Grid:
    """The voxel grid: identity direction, so world x/y/z depend on i/j/k alone."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    def axis(self, a: int, sl: slice | None = None) -> np.ndarray:
        n = np.arange(self.shape[a], dtype=np.float64)[sl if sl is not None else slice(None)]
        return (self.origin[a] + self.spacing[a] * n).astype(F32)

    def coords(self, box: tuple[slice, slice, slice]):
        """World x, y, z of a box as broadcastable arrays of shapes (n,1,1), (1,n,1), (1,1,n)."""
        x, y, z = (self.axis(a, box[a]) for a in range(3))
        return x[:, None, None], y[None, :, None], z[None, None, :]

    def sub(self, box: tuple[slice, slice, slice]) -> Grid:
        """The grid of the voxels in ``box``."""
        origin = tuple(self.origin[a] + box[a].start * self.spacing[a] for a in range(3))
        return Grid(tuple(box[a].stop - box[a].start for a in range(3)), self.spacing, origin)

    def everything(self) -> tuple[slice, slice, slice]:
        return tuple(slice(0, n) for n in self.shape)

    def box(self, lo, hi) -> tuple[slice, slice, slice] | None:
        """The voxel box covering the world box ``[lo, hi]``, or None when it misses the grid."""
        out = []
        for a in range(3):
            i0 = int(np.ceil((lo[a] - self.origin[a]) / self.spacing[a]))
            i1 = int(np.floor((hi[a] - self.origin[a]) / self.spacing[a])) + 1
            i0, i1 = max(i0, 0), min(i1, self.shape[a])
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)


class Shape(ABC):
    """A signed distance in world mm with a world bounding box."""

    @abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) corners in world mm outside of which the shape is surely absent."""

    @abstractmethod
    def sdf(self, x, y, z) -> np.ndarray:
        """Signed distance (mm, negative inside) at world points."""


@dataclass(frozen=True)
class Ellipsoid(Shape):
    """An ellipsoid with semi-axes ``radii`` along the columns of ``rot`` (world)."""

    center: np.ndarray
    radii: np.ndarray
    rot: np.ndarray

    def bounds(self):
        half = np.sqrt(((self.rot * self.radii[None, :]) ** 2).sum(axis=1))
        return self.center - half, self.center + half

    def sdf(self, x, y, z):
        # local = rot.T @ (p - c); Quilez's bound k0 (k0 - 1) / k1 is exact on the surface.
        dx, dy, dz = x - F32(self.center[0]), y - F32(self.center[1]), z - F32(self.center[2])
        k0 = np.zeros(np.broadcast_shapes(dx.shape, dy.shape, dz.shape), F32)
        k1 = np.zeros_like(k0)
        for c in range(3):
            r = self.rot[:, c].astype(F32)
            u = dx * r[0] + dy * r[1] + dz * r[2]
            k0 += (u / F32(self.radii[c])) ** 2
            k1 += (u / F32(self.radii[c] ** 2)) ** 2
        k0 = np.sqrt(k0)
        k1 = np.sqrt(k1) + F32(1e-6)
        return k0 * (k0 - 1) / k1


@dataclass(frozen=True)
class Cone(Shape):
    """A round cone (capsule with radii ``ra`` at ``a`` and ``rb`` at ``b``): one segment of a tube."""

    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float

    def bounds(self):
        r = max(self.ra, self.rb)
        return np.minimum(self.a, self.b) - r, np.maximum(self.a, self.b) + r

    def sdf(self, x, y, z):
        ba = (self.b - self.a).astype(F32)
        L2 = F32(max(float(ba @ ba), 1e-9))
        px, py, pz = x - F32(self.a[0]), y - F32(self.a[1]), z - F32(self.a[2])
        pa_ba = px * ba[0] + py * ba[1] + pz * ba[2]
        pa2 = px * px + py * py + pz * pz
        h = np.clip(pa_ba / L2, 0, 1)
        d2 = np.maximum(pa2 - 2 * h * pa_ba + h * h * L2, 0)
        return np.sqrt(d2) - (F32(self.ra) + h * F32(self.rb - self.ra))


def tube(points, radii) -> list[Cone]:
    """A tube along a polyline, radius interpolated between the points: one cone per segment."""
    pts = [np.asarray(p, dtype=np.float64) for p in points]
    return [Cone(pts[n], pts[n + 1], float(radii[n]), float(radii[n + 1])) for n in range(len(pts) - 1)]


@dataclass(frozen=True)
class Loft(Shape):
    """Elliptic cross-sections along the local z axis of ``frame``, capped at ``z0`` and ``z1``.

    ``zs`` are local control heights and ``cx, cy, ax, ay`` the section centre and
    semi-axes there (local, unscaled mm); between them they are interpolated by a
    cubic fitted through the control points (cheap to evaluate on a big box).
    """

    frame: Frame
    zs: tuple[float, ...]
    cx: tuple[float, ...]
    cy: tuple[float, ...]
    ax: tuple[float, ...]
    ay: tuple[float, ...]

    def _poly(self, values) -> np.ndarray:
        deg = min(3, len(self.zs) - 1)
        return np.polyfit(self.zs, values, deg)

    def bounds(self):
        zz = np.linspace(self.zs[0], self.zs[-1], 24)
        pts = []
        for name in ("cx", "cy", "ax", "ay"):
            pts.append(np.polyval(self._poly(getattr(self, name)), zz))
        cx, cy, ax, ay = pts
        corners = []
        for sx in (-1, 1):
            for sy in (-1, 1):
                corners.append(np.stack([cx + sx * ax, cy + sy * ay, zz], axis=1))
        world = np.concatenate([[self.frame.point(p) for p in c] for c in corners])
        return world.min(axis=0), world.max(axis=0)

    def sdf(self, x, y, z):
        f = self.frame
        lx, ly, lz = (f.local(a, x, y, z) for a in range(3))
        zc = np.clip(lz, self.zs[0], self.zs[-1])
        cx, cy, ax, ay = (
            np.polyval(self._poly(getattr(self, n)).astype(F32), zc) for n in ("cx", "cy", "ax", "ay")
        )
        u, v = lx - cx, ly - cy
        k0 = np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
        k1 = np.sqrt((u / ax**2) ** 2 + (v / ay**2) ** 2) + F32(1e-6)
        d = k0 * (k0 - 1) / k1
        d = np.maximum(d, np.maximum(F32(self.zs[0]) - lz, lz - F32(self.zs[-1])))
        return d * F32(f.s)


@dataclass(frozen=True)
class HalfSpace(Shape):
    """Points with ``dot(p - point, normal) <= 0`` (unbounded; only used to cut other shapes)."""

    point: np.ndarray
    normal: np.ndarray

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(3, -np.inf), np.full(3, np.inf)  # unbounded: cut a bounded shape with it

    def sdf(self, x, y, z):
        n = self.normal.astype(F32)
        return (
            (x - F32(self.point[0])) * n[0]
            + (y - F32(self.point[1])) * n[1]
            + (z - F32(self.point[2])) * n[2]
        )


def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth union (polynomial smooth minimum, blend width ``k`` mm)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(F32(0.5) + F32(0.5 / k) * (b - a), 0, 1)
    return b + h * (a - b) - F32(k) * h * (1 - h)


@dataclass
class Field:
    """A signed distance sampled on a box of the grid (``FAR`` where nothing was evaluated)."""

    box: tuple[slice, slice, slice]
    d: np.ndarray


def union_bounds(shapes: list[Shape]) -> tuple[np.ndarray, np.ndarray]:
    """The world box (low, high corners) around ``shapes``."""
    corners = [s.bounds() for s in shapes]
    return np.min([c[0] for c in corners], axis=0), np.max([c[1] for c in corners], axis=0)


def union_box(grid: Grid, shapes: list[Shape], margin: float):
    lo, hi = union_bounds(shapes)
    return grid.box(lo - margin, hi + margin)


def evaluate(
    grid: Grid, shapes: list[Shape], margin: float = 2.0, k: float = 0.0, smooth: bool = False
) -> Field | None:
    """Smooth union of ``shapes`` on the grid, exact where the result is below ``margin`` mm.

    Each shape is evaluated on its own box (its bounds grown by ``margin + k``),
    so the cost follows the shapes' sizes, not the union's. ``smooth=True`` for
    shapes without sharp detail (muscles, the body; radii of 10 mm and more):
    evaluated sparsely and interpolated (:func:`smooth_sample`), within 0.1 mm.
    """
    pad = margin + k
    box = union_box(grid, shapes, pad)
    if box is None:
        return None
    if smooth:
        inner = margin + 2 * max(grid.spacing)  # interpolation near the box's edge needs valid neighbours
        return Field(box, smooth_sample(grid.sub(box), lambda g: _dense(g, shapes, inner, k)))
    d = np.full(tuple(s.stop - s.start for s in box), FAR, F32)
    for s in shapes:
        lo, hi = s.bounds()
        sub = grid.box(lo - pad, hi + pad)
        if sub is None:
            continue
        local = tuple(slice(sub[a].start - box[a].start, sub[a].stop - box[a].start) for a in range(3))
        d[local] = smin(d[local], s.sdf(*grid.coords(sub)), k)
    return Field(box, d)


def _dense(grid: Grid, shapes: list[Shape], margin: float, k: float) -> np.ndarray:
    """:func:`evaluate` on the whole of ``grid`` (``FAR`` where no shape was evaluated)."""
    d = np.full(grid.shape, FAR, F32)
    field = evaluate(grid, shapes, margin, k)
    if field is not None:
        d[field.box] = field.d
    return d


def cut(grid: Grid, field: Field, shape: Shape, grow: float = 0.0) -> None:
    """Intersect ``field`` with ``shape`` grown by ``grow`` mm (``max(d, d_shape - grow)``), in place."""
    field.d = np.maximum(field.d, shape.sdf(*grid.coords(field.box)) - F32(grow))


def subtract(grid: Grid, field: Field, shape: Shape, grow: float = 0.0) -> None:
    """Remove ``shape`` grown by ``grow`` mm from ``field`` (``max(d, -(d_shape - grow))``), in place."""
    field.d = np.maximum(field.d, F32(grow) - shape.sdf(*grid.coords(field.box)))


@dataclass(frozen=True)
class Intersection(Shape):
    """``a`` cut by ``b`` (``max``); bounded by ``a``."""

    a: Shape
    b: Shape

    def bounds(self):
        return self.a.bounds()

    def sdf(self, x, y, z):
        return np.maximum(self.a.sdf(x, y, z), self.b.sdf(x, y, z))


@dataclass(frozen=True)
class WorldNoise:
    """A smooth Gaussian random field fixed in world coordinates (so every grid sees the same one).

    Coefficients on a lattice of ``step`` mm over ``[lo, hi]`` are blended with Gaussian weights along each axis; each row of weights has unit
    norm, so the field is N(0, 1) at every point. Anatomy that comes from noise
    (bowel gas, the marrow boundary, fat strands) must look the same on the CT and
    the shifted MR grid.
    """

    lo: np.ndarray
    step: float
    coef: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, lo, hi, step: float) -> WorldNoise:
        lo = np.asarray(lo, dtype=np.float64) - 2 * step
        n = np.ceil((np.asarray(hi, dtype=np.float64) + 2 * step - lo) / step).astype(int) + 1
        return cls(lo, float(step), rng.standard_normal(tuple(n), dtype=F32))

    def _weights(self, a: int, coords: np.ndarray) -> tuple[slice, np.ndarray]:
        """Blending weights (points x nodes) over the nodes within 4 steps of ``coords``."""
        c = coords.astype(np.float64)
        step = self.step
        n0 = max(int(np.floor((c.min() - self.lo[a]) / step)) - 4, 0)
        n1 = min(int(np.ceil((c.max() - self.lo[a]) / step)) + 5, self.coef.shape[a])
        n1 = max(n1, n0 + 1)
        nodes = self.lo[a] + step * np.arange(n0, n1)
        w = np.exp(-0.5 * ((c[:, None] - nodes[None, :]) / step) ** 2)
        norm = np.sqrt((w**2).sum(axis=1, keepdims=True))
        return slice(n0, n1), (w / np.where(norm == 0, 1, norm)).astype(F32)

    def sample(self, grid: Grid, box: tuple[slice, slice, slice]) -> np.ndarray:
        (sx, wx), (sy, wy), (sz, wz) = (self._weights(a, grid.axis(a, box[a])) for a in range(3))
        out = np.tensordot(wx, self.coef[sx, sy, sz], axes=(1, 0))  # (ni, b, c)
        out = np.tensordot(out, wy, axes=(1, 1))  # (ni, c, nj)
        out = np.tensordot(out, wz, axes=(1, 1))  # (ni, nj, nk)
        return out.astype(F32, copy=False)


def smooth_sample(grid: Grid, sample: Callable[[Grid], np.ndarray]) -> np.ndarray:
    """``sample(g)`` (an array on grid ``g``) for a field that is smooth over a few mm, on ``grid``.

    On fine grids (in-plane voxels of 2.5 mm or less) the field is sampled on every
    second voxel in-plane and interpolated linearly: a quarter of the cost, and for
    fields that vary over 3 mm or more (the body's surface, texture, strand noise)
    an error well below their own variation.
    """
    fine = all(grid.spacing[a] <= 2.5 and grid.shape[a] > 8 for a in (0, 2))
    if not fine:
        return sample(grid)
    half = Grid(
        (-(-grid.shape[0] // 2), grid.shape[1], -(-grid.shape[2] // 2)),
        (2 * grid.spacing[0], grid.spacing[1], 2 * grid.spacing[2]),
        grid.origin,
    )
    out = sample(half)
    for axis in (0, 2):
        out = _upsample(out, axis, grid.shape[axis])
    return out


def _upsample(a: np.ndarray, axis: int, n: int) -> np.ndarray:
    """``a`` (``ceil(n / 2)`` points along ``axis``) on ``n`` points: the old ones kept, linear between."""

    def along(sl: slice) -> tuple[slice, ...]:
        return tuple(sl if ax == axis else slice(None) for ax in range(a.ndim))

    m = a.shape[axis]
    out = np.empty(tuple(n if ax == axis else d for ax, d in enumerate(a.shape)), F32)
    out[along(slice(0, n, 2))] = a[along(slice(0, (n + 1) // 2))]
    between = min(n // 2, m - 1)
    out[along(slice(1, 2 * between, 2))] = a[along(slice(0, between))]
    out[along(slice(1, 2 * between, 2))] += a[along(slice(1, between + 1))]
    out[along(slice(1, 2 * between, 2))] *= F32(0.5)
    if n // 2 > between:  # an even n: the last point lies past the last sample
        out[along(slice(n - 1, n))] = a[along(slice(m - 1, m))]
    return out
