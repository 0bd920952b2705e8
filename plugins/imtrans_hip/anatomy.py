"""One procedural hip: sampled body and pose, built from smooth shapes, painted as tissue and label maps.

The anatomy is defined in a canonical pelvic frame (mm, LPS: x to the patient's
left, y posterior, z superior; origin midway between the hip-joint centres) for
a reference adult, then posed per subject: body scale, pelvic tilt / obliquity /
yaw, and for each femur abduction, flexion and rotation about its head centre.
Flexion moves the thigh across the coronal slices, as it does in a real scan.

Painting is a painter's algorithm over a voxel grid: air, body (skin, fat, the
superficial fascia), muscles (each voxel goes to the nearest muscle shape, with
thin fat septa where two muscles meet and thin sheets of fat inside), bowel
loops, vessels, bladder, joint cartilage, then bones (cortical shell + cancellous
or fatty-marrow interior) and an optional hip prosthesis. The result is a
*tissue* map (what sets the intensities) and a *label* map (what a segmentation
would call each voxel); :attr:`Anatomy.texture` adds the smooth heterogeneity
within a tissue (marrow fat, fatty infiltration) that both modalities see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .shapes import (
    F32,
    FAR,
    Ellipsoid,
    Frame,
    Grid,
    HalfSpace,
    Intersection,
    Loft,
    Shape,
    WorldNoise,
    cut,
    evaluate,
    rotation,
    smooth_sample,
    subtract,
    tube,
    union_bounds,
    unit,
)

# Label values of the label volumes; 0 is air (outside the body and bowel gas).
LABELS: dict[str, int] = {
    "pelvis": 1,
    "sacrum": 2,
    "femur_left": 3,
    "femur_right": 4,
    "gluteus_maximus": 5,
    "gluteus_medius": 6,
    "gluteus_minimus": 7,
    "iliopsoas": 8,
    "adductors": 9,
    "quadriceps": 10,
    "bladder": 11,
    "fat": 12,
    "skin": 13,
    "other_muscle": 14,  # obturators, hamstrings, TFL, sartorius, pectineus, pelvic floor, ...
    "soft_tissue": 15,  # bowel, rectum, joint cartilage, intervertebral disc
    "lumbar_spine": 16,  # the L5 vertebral body at the top of the field of view
}
# Structures scored as one (the paper's Dice is on "femur", both sides together).
LABEL_GROUPS: dict[str, list[str]] = {
    "femur": ["femur_left", "femur_right"],
    "bone": ["pelvis", "sacrum", "femur_left", "femur_right", "lumbar_spine"],
    "muscle": [
        "gluteus_maximus",
        "gluteus_medius",
        "gluteus_minimus",
        "iliopsoas",
        "adductors",
        "quadriceps",
        "other_muscle",
    ],
}

# Tissue classes: what decides a voxel's CT and MR value (several per label for bone).
TISSUES: tuple[str, ...] = (
    "air",
    "gas",
    "fat",
    "skin",
    "gluteus_maximus",
    "gluteus_medius",
    "gluteus_minimus",
    "iliopsoas",
    "adductors",
    "quadriceps",
    "other_muscle",
    "urine",
    "cortical",
    "cancellous_pelvis",
    "cancellous_sacrum",
    "cancellous_femur",
    "marrow",
    "cartilage",
    "bowel",
    "disc",
    "fascia",
    "vessel",
    "metal",
)
T = {name: n for n, name in enumerate(TISSUES)}

MUSCLES = (
    "gluteus_maximus",
    "gluteus_medius",
    "gluteus_minimus",
    "iliopsoas",
    "adductors",
    "quadriceps",
    "other_muscle",
)

# How much of each muscle turns into fat strands (for infiltration 1): thin sheets where a smooth
# random field crosses zero, |strand noise| < w, about 0.8 w of the muscle's voxels. The gluteus
# maximus is the fattiest muscle of the hip in CT, the iliopsoas the leanest.
STRANDS = {
    "gluteus_maximus": 0.11,
    "gluteus_medius": 0.06,
    "gluteus_minimus": 0.05,
    "iliopsoas": 0.04,
    "adductors": 0.05,
    "quadriceps": 0.04,
    "other_muscle": 0.06,
}
FASCIA_DEPTH = 0.45  # the superficial fascia runs this far into the subcutaneous fat
FASCIA_HALF_WIDTH = 0.7  # mm

# Where the canonical hip centre sits in the world, relative to the nominal field-of-view centre
# (mm): the 320 mm coronal field then spans the iliac crests to the proximal femoral shafts and the
# 76 mm slab runs from just in front of the femoral heads to the front of the sacrum.
HIP_CENTRE = np.array([0.0, -5.0, 25.0])
FOV_MM = (320.0, 76.0, 320.0)


@dataclass(frozen=True)
class Painted:
    """A body painted on a grid: what a scanner images."""

    tissue: np.ndarray  # tissue ids (``TISSUES``)
    texture: np.ndarray  # the anatomy's texture field on the grid, N(0, 1)
    grid: Grid
    subject: Subject


def tissue_tables(
    values: dict[str, tuple], rng: np.random.Generator, muscle_sd: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One subject's mean, grain SD and texture gain per tissue id, from a modality's table.

    ``values`` maps each tissue to (mean, between-subject SD, grain SD, texture gain,
    ...). The muscles also share one shift of SD ``muscle_sd``: fatty infiltration
    changes them all.
    """
    mean, sd, grain, gain = (np.array([values[t][c] for t in TISSUES], np.float64) for c in range(4))
    mean = mean + sd * rng.standard_normal(len(TISSUES))
    mean[[T[m] for m in MUSCLES]] += rng.standard_normal() * muscle_sd
    return mean.astype(F32), grain.astype(F32), gain.astype(F32)


@dataclass(frozen=True)
class Subject:
    """The sampled knobs of one body (degrees and mm)."""

    scale: float  # skeleton and muscle size (1 = reference adult; the field of view is fixed)
    width: float  # lateral width of the soft-tissue envelope
    fat: float  # subcutaneous fat over the hips, mm
    fat_thigh: float  # subcutaneous fat over the thighs, mm
    muscle: float  # muscle bulk factor
    head: float  # femoral head size factor
    tilt: float  # pelvic tilt (about the left-right axis); moves sacrum and pubis across slices
    obliquity: float  # about the anterior-posterior axis
    yaw: float  # about the vertical axis
    shift: tuple[float, float, float]  # body position in the field of view, mm
    abduction: tuple[float, float]  # (left, right)
    flexion: tuple[float, float]
    rotation: tuple[float, float]  # internal (+) / external (-) rotation of each femur
    bladder: float  # filling factor
    infiltration: float  # fat strands in muscle (1 = typical adult; older, less active: more)
    gas: float  # bowel gas (1 = typical)
    implant: str = ""  # "left" or "right": a metal hip prosthesis in that femur

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Subject:
        """One body: habitus and pose spread like an adult patient population (tilt SD 8 degrees)."""
        u = rng.uniform
        fat = float(np.exp(rng.normal(np.log(16.0), 0.45)))  # subcutaneous fat, mm: 7-40 mm within 2 SD
        return cls(
            scale=float(u(0.80, 0.92)),
            width=float(u(0.93, 1.08)),
            fat=fat,
            fat_thigh=float(fat * u(0.6, 1.1)),
            muscle=float(u(0.78, 1.2)),
            head=float(u(0.93, 1.07)),
            tilt=float(rng.normal(0.0, 8.0)),
            obliquity=float(rng.normal(0.0, 3.0)),
            yaw=float(rng.normal(0.0, 4.0)),
            shift=(float(rng.normal(0, 4.0)), float(rng.normal(0, 3.0)), float(rng.normal(0, 6.0))),
            abduction=(float(u(-8.0, 12.0)), float(u(-8.0, 12.0))),
            flexion=(float(u(-10.0, 20.0)), float(u(-10.0, 20.0))),
            rotation=(float(u(-25.0, 30.0)), float(u(-25.0, 30.0))),
            bladder=float(u(0.25, 1.6)),
            infiltration=float(np.exp(rng.normal(0.0, 0.35))),
            gas=float(u(0.5, 1.6)),
        )

    def diameter(self) -> float:
        """Water-equivalent diameter of the body at the hips, mm (what sets a CT's noise)."""
        lateral = (158.0 * self.width + self.fat / self.scale) * self.scale
        depth = (120.0 + self.fat / self.scale) * self.scale
        return float(2.0 * np.sqrt(lateral * depth))


@dataclass
class Bone:
    """A bone: its shapes (smooth union), cuts, and how its shell and interior are typed."""

    label: str
    shapes: list[Shape]
    k: float
    interior: str  # tissue of the interior
    cortex: float  # cortical shell thickness, mm
    subtract: list[tuple[Shape, float]] = field(default_factory=list)  # (shape, grown by mm)
    cut: Shape | None = None  # keep only where this shape is negative
    frame: Frame | None = None  # femur frame: thicker shaft cortex and fatty marrow below the trochanters
    marrow_noise: WorldNoise | None = None


@dataclass
class Anatomy:
    """One posed body, ready to paint on any grid."""

    subject: Subject
    body: list[Shape]
    body_k: float
    bowel: Shape
    rectum: list[Shape]
    gut_noise: WorldNoise
    bladder: Shape
    muscles: dict[str, list[Shape]]
    joints: list[tuple[np.ndarray, float, float, np.ndarray]]  # centre, inner, outer radius, opening
    bones: list[Bone]
    disc: Shape
    vessels: list[Shape]
    strands: WorldNoise  # where fat strands run inside the muscles
    texture: WorldNoise  # smooth heterogeneity within tissues (marrow fat, infiltration), N(0, 1)
    implant: list[Shape] = field(default_factory=list)  # a metal stem and head, if any
    skin: float = 2.0


# --- the reference anatomy, one side ----------------------------------------------------------------
# Coordinates of one side in mm for the reference adult: x lateral (mirrored for the right side),
# y posterior, z superior. A point is (frame, x, y, z, radius); the frame is
#   P  the pelvis: origin midway between the hip-joint centres (which sit at x = 85),
#   F  the femur: origin at its head centre, posed with the thigh,
#   W  the iliac wing: x along the crest towards the anterior superior iliac spine, y up the wing,
#      z out of the iliac fossa (medial); origin at the middle of the wing.
# A tube runs through its points with the radius interpolated; an ellipsoid is
# (frame, x, y, z, radii, axes) with the axes of frame P, F, W or G (gluteus maximus fibres).
P, F, W, G = "P", "F", "W", "G"
WING_CENTRE = (92.0, 8.0, 78.0)

PELVIS_TUBES = (
    # iliac crest
    ((W, -50, 42, -2, 6), (W, -17, 42, 2, 6.5), (W, 17, 42, 2, 6.5), (W, 50, 42, -3, 8)),
    # ilium, from the acetabular roof to the sacroiliac joint
    ((P, 80, 4, 16, 19), (P, 72, 12, 45, 16), (P, 60, 28, 75, 15), (P, 50, 40, 98, 13)),
    # superior pubic ramus; inferior pubic and ischial ramus; ischium down to the tuberosity
    ((P, 70, -14, -10, 13), (P, 42, -28, -22, 10), (P, 14, -36, -30, 12)),
    ((P, 10, -30, -50, 8), (P, 32, -10, -68, 8), (P, 55, 14, -66, 10)),
    ((P, 80, 16, -16, 17), (P, 70, 22, -46, 15), (P, 60, 26, -66, 16)),
)
PELVIS_ELLIPSOIDS = (
    (W, 0, 0, 0, (62, 45, 6.5), W),  # iliac wing
    (P, 12, -34, -36, (9, 9, 17), P),  # pubic body at the symphysis
)
FEMUR_TUBES = (
    ((F, 0, 0, 0, 15), (F, 24, 5, -22, 14), (F, 36, 8, -36, 17)),  # neck (first radius: 0.65 x head)
    ((F, 40, 10, -50, 16), (F, 31, 10, -120, 14), (F, 8, 10, -330, 13.5)),  # shaft, drifting medially
)
FEMUR_ELLIPSOIDS = (
    (F, 50, 14, -26, (14, 18, 22), F),  # greater trochanter
    (F, 40, 10, -55, (19, 17, 28), F),  # intertrochanteric region
    (F, 22, 18, -68, (9, 9, 11), F),  # lesser trochanter
)
# Muscles: radii scale with the subject's muscle bulk (an ellipsoid's third radius only).
MUSCLE_TUBES = {
    "gluteus_minimus": (((W, 0, -32, -12, 11), (F, 46, 2, -12, 9)),),
    "gluteus_medius": (((W, 0, -24, -27, 18), (F, 58, 8, -6, 13)),),
    "gluteus_maximus": (((F, 68, 30, -15, 16), (F, 66, 24, -60, 15), (F, 56, 22, -100, 10)),),
    "iliopsoas": (
        # psoas down the lumbar spine, then in front of the hip joint to the lesser trochanter
        ((P, 35, 25, 175, 15), (P, 48, 12, 110, 18), (P, 64, -18, 45, 18), (P, 70, -36, 5, 16)),
        ((P, 70, -36, 5, 16), (F, 8, -20, -38, 14), (F, 20, 12, -66, 9)),
    ),
    "quadriceps": (
        # vastus lateralis; vastus intermedius and medialis; rectus femoris
        ((F, 58, 6, -40, 16), (F, 60, 2, -110, 26), (F, 46, -4, -200, 28), (F, 30, -8, -330, 20)),
        ((F, 30, -14, -75, 14), (F, 24, -22, -150, 24), (F, 8, -22, -250, 26), (F, -5, -18, -330, 24)),
        ((P, 100, -42, 12, 8), (F, 25, -48, -80, 16), (F, 22, -50, -200, 18), (F, 18, -45, -330, 14)),
    ),
    "adductors": (
        # longus and brevis; magnus
        ((P, 18, -24, -42, 14), (F, -30, -10, -100, 30), (F, -20, 5, -200, 32), (F, -5, 10, -330, 24)),
        ((P, 48, 24, -68, 14), (F, -22, 30, -140, 30), (F, -8, 26, -250, 28), (F, 5, 22, -330, 20)),
    ),
    "other_muscle": (
        # hamstrings; tensor fasciae latae; sartorius; pectineus; quadratus femoris; piriformis
        ((P, 60, 30, -70, 14), (F, -5, 40, -150, 26), (F, 0, 36, -330, 24)),
        ((P, 122, -40, 62, 10), (F, 68, -22, -40, 14), (F, 66, -12, -110, 8)),
        ((P, 118, -52, 72, 8), (F, 10, -50, -120, 11), (F, -40, -20, -330, 10)),
        ((P, 28, -34, -28, 10), (F, 10, -10, -75, 15), (F, 22, 10, -95, 8)),
        ((P, 62, 32, -56, 10), (F, 40, 26, -50, 10)),
        ((P, 30, 60, 60, 12), (F, 46, 22, -10, 9)),
    ),
}
MUSCLE_ELLIPSOIDS = {
    "gluteus_minimus": ((W, 0, -14, -11, (46, 30, 8), W),),  # on the outer wing
    "gluteus_medius": ((W, 0, 2, -27, (58, 44, 14), W),),  # over the minimus
    "gluteus_maximus": ((P, 92, 60, 5, (85, 70, 30), G),),  # the buttock, behind the joint
    "iliopsoas": ((W, 0, -5, 16, (50, 40, 13), W),),  # iliacus, in the iliac fossa
    "other_muscle": (
        (P, 45, 10, -18, (6, 28, 24), P),  # obturator internus, on the inner pelvic wall
        (P, 48, -8, -56, (10, 20, 13), P),  # obturator externus
    ),
}
# The thigh's soft tissue: radius factor x (62 mm of muscle x bulk + the thigh's fat).
THIGH = ((F, 22, 5, -30, 1.0), (F, 12, 5, -160, 0.95), (F, -5, 5, -360, 0.8))
# Vessels, one side: common and external iliac artery down the pelvic brim, under the inguinal
# ligament medial to the iliopsoas, then the femoral artery down the thigh; the vein runs medial to it.
ARTERY = (
    (P, 6, -14, 172, 6),
    (P, 30, -12, 130, 5),
    (P, 52, -22, 72, 4.5),
    (P, 58, -50, 8, 4.5),
    (F, -18, -36, -150, 4),
    (F, -10, -18, -330, 3.5),
)
VEIN = tuple((fr, x - 11, y + 6, z, r * 1.4) for fr, x, y, z, r in ARTERY)
# A total hip prosthesis: ball, neck and a stem down the medullary canal (femur frame, radii in mm).
PROSTHESIS = (
    (F, 0, 0, 0, 7),
    (F, 24, 5, -22, 8),
    (F, 36, 9, -50, 9),
    (F, 31, 10, -120, 6.5),
    (F, 25, 10, -180, 4),
)
PROSTHESIS_HEAD = 0.65  # of the femoral head's radius: a 28-32 mm ball


@dataclass(frozen=True)
class _Side:
    """Turns the tables above into posed shapes for one side of one subject."""

    pelvis: Frame
    femur: Frame
    mirror: np.ndarray
    wing: np.ndarray
    axes: dict[str, np.ndarray]

    def point(self, frame: str, x: float, y: float, z: float) -> np.ndarray:
        if frame == W:
            return self.pelvis.point(self.mirror * WING_CENTRE + self.wing @ (x, y, z))
        return (self.femur if frame == F else self.pelvis).point(self.mirror * (x, y, z))

    def tubes(self, paths, scale: float) -> list[Shape]:
        """Tubes through the points of ``paths``, radii times ``scale`` (mm)."""
        return [
            s
            for path in paths
            for s in tube([self.point(*p[:4]) for p in path], [p[4] * scale for p in path])
        ]

    def ellipsoids(self, specs, bulk: float = 1.0) -> list[Shape]:
        """Ellipsoids of ``specs``, the third radius times ``bulk``."""
        sc = self.pelvis.s
        return [
            Ellipsoid(
                self.point(frame, x, y, z), np.array([ra, rb, rc * bulk]) * sc, self.pelvis.R @ self.axes[ax]
            )
            for frame, x, y, z, (ra, rb, rc), ax in specs
        ]


def build(subject: Subject, rng: np.random.Generator) -> Anatomy:
    """Pose the reference anatomy for ``subject`` (``rng`` draws the anatomical noise fields)."""
    sc, mb = subject.scale, subject.muscle
    Rg = rotation("z", subject.yaw) @ rotation("y", subject.obliquity) @ rotation("x", subject.tilt)
    pelvis = Frame(Rg, HIP_CENTRE + np.asarray(subject.shift), sc)
    RH = 23.0 * subject.head  # femoral head radius

    def ellipsoid(frame: Frame, c, radii, axes: np.ndarray | None = None) -> Ellipsoid:
        rot = frame.R if axes is None else frame.R @ axes
        return Ellipsoid(frame.point(c), np.asarray(radii, dtype=np.float64) * frame.s, rot)

    body: list[Shape] = []
    muscles: dict[str, list[Shape]] = {m: [] for m in MUSCLES}
    bones: list[Bone] = []
    joints = []

    # --- midline: sacrum, L5, bladder, bowel, rectum, pelvic floor --------------------------------
    sacrum = Loft(
        pelvis,
        zs=(-15, 10, 40, 75, 116),
        cx=(0, 0, 0, 0, 0),
        cy=(45, 60, 62, 50, 28),  # curving back from the promontory, then forward to the coccyx
        ax=(8, 18, 32, 50, 54),  # the alae at the top
        ay=(7, 10, 14, 19, 21),
    )
    bones.append(Bone("sacrum", [sacrum], k=0.0, interior="cancellous_sacrum", cortex=1.2))
    l5 = Loft(
        pelvis, zs=(124, 136, 148, 165), cx=(0,) * 4, cy=(26,) * 4, ax=(26, 24, 24, 26), ay=(20, 19, 19, 20)
    )
    bones.append(Bone("lumbar_spine", [l5], k=0.0, interior="cancellous_sacrum", cortex=1.2))
    disc = Loft(pelvis, zs=(115, 125), cx=(0, 0), cy=(26, 24), ax=(26, 26), ay=(19, 19))

    rb = np.array([42.0, 30.0, 32.0]) * subject.bladder ** (1 / 3)
    bladder = ellipsoid(pelvis, (0, -20, -30 + rb[2]), rb)  # resting on the pelvic floor behind the pubis
    bowel = ellipsoid(pelvis, (0, -35, 118), (95, 70, 62))
    rectum_path = ((0, 42, -48), (0, 52, -15), (8, 50, 30), (22, 35, 70))
    rectum = tube([pelvis.point(p) for p in rectum_path], [r * sc for r in (10, 15, 14, 13)])
    gut_noise = WorldNoise.draw(rng, *union_bounds([bowel, *rectum]), 9.0 * sc)
    muscles["other_muscle"].append(ellipsoid(pelvis, (0, 15, -55), (40, 32, 7)))  # pelvic floor

    # --- soft-tissue envelope: the torso (thighs below) ---------------------------------------------
    fat = subject.fat / sc  # in the unscaled frame
    body.append(
        Loft(
            pelvis,
            zs=(-112, -40, 0, 60, 130, 220),
            cx=(0,) * 6,
            cy=(8, 8, 8, 6, 4, 4),
            ax=tuple(a * subject.width + fat for a in (118, 150, 158, 150, 132, 138)),
            ay=tuple(a + fat for a in (110, 118, 120, 118, 112, 112)),
        )
    )

    femur_noise = WorldNoise.draw(rng, pelvis.t - 250, pelvis.t + 250, 20.0)
    vessels: list[Shape] = []
    implant: list[Shape] = []
    for n, (side, name) in enumerate(((+1, "left"), (-1, "right"))):
        mirror = np.array([side, 1.0, 1.0])
        hip = np.array([side * 85.0, 0.0, 0.0])
        # the femur: rotation about its long axis, then flexion, then abduction, about the head centre
        Rf = (
            rotation("y", -side * subject.abduction[n])
            @ rotation("x", -subject.flexion[n])
            @ rotation("z", -side * subject.rotation[n])
        )
        femur = pelvis.child(hip, Rf)
        # the iliac wing's axes (mirrored per side), z pointing medially into the iliac fossa
        d1 = unit(mirror * (0.55, -0.83, 0.0))
        d2 = unit(mirror * (0.35, 0.05, 0.94))
        nm = unit(np.cross(d1, d2))
        nm = -nm if nm[0] * side > 0 else nm
        wing = np.stack([d1, np.cross(nm, d1), nm], axis=1)
        fib = unit(mirror * (0.55, -0.15, -0.82))  # gluteus maximus: fibres down and out, thickness back
        thick = unit(np.cross(fib, (1.0, 0, 0)))
        thick = -thick if thick[1] < 0 else thick
        axes = {P: np.eye(3), F: Rf, W: wing, G: np.stack([fib, np.cross(thick, fib), thick], axis=1)}

        this = _Side(pelvis, femur, mirror, wing, axes)
        tubes, ellipsoids = this.tubes, this.ellipsoids

        # pelvis, one side: acetabular cup (open laterally, forwards and down), ilium, pubis, ischium;
        # cut at the symphysis, the socket and a joint space around the sacrum taken out
        n_open = unit(Rg @ unit(mirror * (0.72, -0.30, -0.62)))
        cup = Intersection(
            ellipsoid(pelvis, hip, (RH + 13,) * 3), HalfSpace(pelvis.point(hip) + n_open * 8 * sc, n_open)
        )
        socket = ellipsoid(pelvis, hip, (RH + 3,) * 3)
        midline = HalfSpace(pelvis.point((side * 1.5, 0, 0)), -side * pelvis.R[:, 0])
        shapes = [cup, *ellipsoids(PELVIS_ELLIPSOIDS), *tubes(PELVIS_TUBES, sc)]
        bones.append(
            Bone(
                "pelvis",
                shapes,
                k=7.0 * sc,
                interior="cancellous_pelvis",
                cortex=1.5,
                subtract=[(socket, 0.0), (sacrum, 2.0)],
                cut=midline,
            )
        )
        joints.append((pelvis.point(hip), RH * sc, (RH + 3.5) * sc, n_open))

        # femur: head in the socket, neck, trochanters, shaft (fatty marrow below the trochanters)
        neck, shaft = FEMUR_TUBES
        neck = ((F, 0, 0, 0, 0.65 * RH), *neck[1:])
        shapes = [
            ellipsoid(femur, (0, 0, 0), (RH,) * 3),
            *ellipsoids(FEMUR_ELLIPSOIDS),
            *tubes((neck, shaft), sc),
        ]
        bones.append(
            Bone(
                f"femur_{name}",
                shapes,
                k=6.0 * sc,
                interior="cancellous_femur",
                cortex=2.0,  # head and neck; thicker down the shaft, see paint()
                frame=femur,
                marrow_noise=femur_noise,
            )
        )

        # thigh envelope: muscle radius + subcutaneous fat
        body += tubes((THIGH,), 62 * mb * sc + subject.fat_thigh)

        for muscle, paths in MUSCLE_TUBES.items():
            muscles[muscle] += tubes(paths, sc * mb)
        for muscle, specs in MUSCLE_ELLIPSOIDS.items():
            muscles[muscle] += ellipsoids(specs, mb)
        vessels += tubes((ARTERY, VEIN), sc)
        if subject.implant == name:
            implant += [ellipsoid(femur, (0, 0, 0), (PROSTHESIS_HEAD * RH,) * 3), *tubes((PROSTHESIS,), 1.0)]

    lo, hi = union_bounds(body)
    return Anatomy(
        subject=subject,
        body=body,
        body_k=30.0 * sc,
        bowel=bowel,
        rectum=rectum,
        gut_noise=gut_noise,
        bladder=bladder,
        muscles=muscles,
        joints=joints,
        bones=bones,
        disc=disc,
        vessels=vessels,
        strands=WorldNoise.draw(rng, lo, hi, 3.0),
        texture=WorldNoise.draw(rng, lo, hi, 3.0),
        implant=implant,
    )


def paint(anatomy: Anatomy, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Tissue map and label map (both uint8, ``[i, j, k]``) of ``anatomy`` on ``grid``."""
    sub = anatomy.subject
    sc = sub.scale
    tissue = np.zeros(grid.shape, np.uint8)
    labels = np.zeros(grid.shape, np.uint8)
    L = LABELS

    def put(box, mask, t: str, label: int) -> None:
        tissue[box][mask] = T[t]
        labels[box][mask] = label

    # body: fat inside, skin band at the surface (at least most of a voxel wide so it survives coarse grids)
    skin = max(anatomy.skin, 0.8 * min(grid.spacing[0], grid.spacing[2]))
    dbody = _body_distance(anatomy, grid)
    everywhere = (slice(None),) * 3
    put(everywhere, dbody < 0, "fat", L["fat"])
    put(everywhere, (dbody < 0) & (dbody > -skin), "skin", L["skin"])
    fascia = skin + FASCIA_DEPTH * min(sub.fat, sub.fat_thigh)
    put(everywhere, np.abs(dbody + F32(fascia)) < FASCIA_HALF_WIDTH, "fascia", L["fat"])
    deep = min(sub.fat, sub.fat_thigh) * 0.7 + skin  # muscles and viscera stay under this much fat

    # muscles: each voxel near a muscle goes to the nearest one; a thin fat septum where two meet
    fill, septum = 7.0 * sc, 1.0
    best = np.full(grid.shape, FAR, F32)
    second = np.full(grid.shape, FAR, F32)
    owner = np.zeros(grid.shape, np.uint8)
    for m, name in enumerate(MUSCLES, start=1):
        f = evaluate(grid, anatomy.muscles[name], margin=fill + septum, k=6.0 * sc, smooth=True)
        if f is None:
            continue
        b, s2, o = best[f.box], second[f.box], owner[f.box]
        closer = f.d < b
        s2[...] = np.where(closer, b, np.minimum(s2, f.d))
        b[...] = np.where(closer, f.d, b)
        o[closer] = m
    zone = (best < fill) & (dbody < -deep)
    septa = zone & (second - best < septum) & (second < fill)
    _paint_muscles(anatomy, grid, zone & ~septa, owner, tissue, labels)
    tissue[septa], labels[septa] = T["fat"], L["fat"]

    # bowel and rectum (over muscle fill, not muscle cores): gas, wall/content and mesenteric fat from
    # one world-fixed noise field
    gas = 1.4 + 0.8 * (1.0 - sub.gas)  # more gas, a lower threshold (about 8 % of the bowel for gas = 1)
    for shapes, gas_at, fat_at in (([anatomy.bowel], gas, -0.9), (anatomy.rectum, gas - 0.4, -9.0)):
        f = evaluate(grid, shapes, margin=0.0, k=4.0 * sc)
        if f is None:
            continue
        inside = (f.d < 0) & (dbody[f.box] < -(deep + 4.0)) & (best[f.box] > 0)  # muscles keep their cores
        noise = anatomy.gut_noise.sample(grid, f.box)
        put(f.box, inside & (noise <= fat_at), "fat", L["fat"])
        put(f.box, inside & (noise > fat_at) & (noise <= gas_at), "bowel", L["soft_tissue"])
        put(f.box, inside & (noise > gas_at), "gas", 0)

    # bladder (urine), then joint cartilage around the femoral heads
    f = evaluate(grid, [anatomy.bladder], margin=0.0)
    if f is not None:
        put(f.box, f.d < 0, "urine", L["bladder"])
    for centre, r_in, r_out, n_open in anatomy.joints:
        box = grid.box(centre - r_out, centre + r_out)
        if box is None:
            continue
        x, y, z = grid.coords(box)
        dx, dy, dz = x - F32(centre[0]), y - F32(centre[1]), z - F32(centre[2])
        r = np.sqrt(dx * dx + dy * dy + dz * dz)
        covered = dx * F32(n_open[0]) + dy * F32(n_open[1]) + dz * F32(n_open[2]) < F32(12.0 * sc)
        put(box, (r > r_in) & (r < r_out) & covered, "cartilage", L["soft_tissue"])
    f = evaluate(grid, [anatomy.disc], margin=0.0)
    if f is not None:
        put(f.box, f.d < 0, "disc", L["soft_tissue"])
    f = evaluate(grid, anatomy.vessels, margin=0.0)
    if f is not None:
        put(f.box, (f.d < 0) & (dbody[f.box] < -deep), "vessel", L["soft_tissue"])

    # bones: cortical shell, cancellous (or fatty marrow down the femoral shaft) inside
    for bone in anatomy.bones:
        f = evaluate(grid, bone.shapes, margin=0.0, k=bone.k)
        if f is None:
            continue
        for shape, grow in bone.subtract:
            subtract(grid, f, shape, grow)
        if bone.cut is not None:
            cut(grid, f, bone.cut)
        inside = f.d < 0
        if not inside.any():
            continue
        cortex = F32(bone.cortex)
        interior = np.full(f.d.shape, T[bone.interior], np.uint8)
        if bone.frame is not None:  # femur: by height below the head centre (reference mm)
            zl = bone.frame.local(2, *grid.coords(f.box))
            cortex = np.interp(zl, [-330, -120, -75, 0], [5.0, 4.5, 2.0, 2.0]).astype(F32)
            wobble = bone.marrow_noise.sample(grid, f.box) * F32(8.0)
            interior[zl + wobble < -85] = T["marrow"]
        tissue_box = np.where(f.d > -cortex, np.uint8(T["cortical"]), interior)
        box = f.box
        tissue[box][inside] = tissue_box[inside]
        labels[box][inside] = L[bone.label]
    if anatomy.implant:
        f = evaluate(grid, anatomy.implant, margin=0.0)
        if f is not None:
            put(f.box, f.d < 0, "metal", L[f"femur_{sub.implant}"])
    return tissue, labels


def _body_distance(anatomy: Anatomy, grid: Grid) -> np.ndarray:
    """Signed distance to the skin on ``grid`` (``FAR`` far outside)."""
    body = evaluate(grid, anatomy.body, margin=1.0, k=anatomy.body_k, smooth=True)
    d = np.full(grid.shape, FAR, F32)
    if body is not None:
        d[body.box] = body.d
    return d


def _paint_muscles(
    anatomy: Anatomy, grid: Grid, where: np.ndarray, owner: np.ndarray, tissue: np.ndarray, labels: np.ndarray
) -> None:
    """Muscle voxels by owner (1-based index into ``MUSCLES``), some turned into fat strands."""
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(where)) if where.any() else None
    if box is None:
        return
    where, owner = where[box], owner[box]
    strand_width = np.array([0.0, *(STRANDS[m] for m in MUSCLES)], F32) * F32(anatomy.subject.infiltration)
    width = strand_width[owner]
    noise = smooth_sample(grid.sub(box), lambda g: anatomy.strands.sample(g, g.everything()))
    strand = np.abs(noise) < width
    muscle_tissue = np.array([0, *(T[m] for m in MUSCLES)], np.uint8)
    muscle_label = np.array([0, *(LABELS[m] for m in MUSCLES)], np.uint8)
    tissue[box][where] = np.where(strand, np.uint8(T["fat"]), muscle_tissue[owner])[where]
    labels[box][where] = muscle_label[owner][where]


def nominal_grid(
    size: int = 256, slices: int = 38, shift=(0.0, 0.0, 0.0), thickness: float = FOV_MM[1]
) -> Grid:
    """The coronal field of view: 320 x ``thickness`` x 320 mm over ``size x slices x size`` voxels, centred (plus ``shift`` mm)."""
    shape = (int(size), int(slices), int(size))
    extent = (FOV_MM[0], float(thickness), FOV_MM[2])
    spacing = tuple(extent[a] / shape[a] for a in range(3))
    origin = tuple(-(shape[a] - 1) / 2 * spacing[a] + float(shift[a]) for a in range(3))
    return Grid(shape, spacing, origin)
