"""What a dataset spec builds: lazily loaded CT and MR pools, and paired test subjects.

A dataset plugin (``phantom``, ``folder``, ``synthrad``, ...) returns a
:class:`VolumeSource`. Training samples unpaired 2-D slices from ``ct`` and
``mr``; evaluation reads ``paired`` subjects (same anatomy in both modalities,
optionally with labels and a mask). Nothing is loaded until it is indexed, so a
source over thousands of files costs nothing to build.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .volume import Volume


@dataclass
class VolumePool(Sequence):
    """Volumes of one modality, named by id, loaded on access."""

    ids: list[str]
    loader: Callable[[str], Volume]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Volume:  # type: ignore[override]
        return self.loader(self.ids[index])

    def load(self, volume_id: str) -> Volume:
        return self.loader(volume_id)


@dataclass
class PairedSubject:
    """One subject seen in both modalities (and maybe labelled): for evaluation.

    ``load()`` returns a dict with keys ``ct`` and ``mr``, and where available
    ``labels`` (integer label map on the MR grid) and ``mask`` (where to score).
    """

    id: str
    loader: Callable[[], dict[str, Volume]]

    def load(self) -> dict[str, Volume]:
        return self.loader()


@dataclass
class VolumeSource:
    """Unpaired CT and MR pools for training plus paired subjects for testing.

    ``train_pairs``: aligned subjects for supervised or hybrid training (a
    paired loss), never the test subjects. ``label_names`` maps structure
    names (``pelvis``, ``femur``, ...) to label values in the ``labels``
    volumes; ``fingerprint`` identifies the content (for caches): two sources
    with equal fingerprints hold equal voxels.
    """

    ct: VolumePool
    mr: VolumePool
    paired: list[PairedSubject] = field(default_factory=list)
    label_names: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""
    train_pairs: list[PairedSubject] = field(default_factory=list)
    mr_n4: bool = (
        False  # the MRs were N4-corrected (recorded in the input contract of a model trained on them)
    )
    mr_weighting: str = ""  # the MRs' contrast, t1, t2 or pd, where known (recorded in the contract too)

    def pair_pool(self, modality: str) -> VolumePool:
        """One modality of the training pairs as a pool, in the pairs' order."""
        by_id = {pair.id: pair for pair in self.train_pairs}
        return VolumePool(list(by_id), lambda pair_id: by_id[pair_id].load()[modality])
