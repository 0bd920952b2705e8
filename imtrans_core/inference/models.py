"""Trained generators out of a run directory or a checkpoint file.

``mr2ct`` is G_CT (MR in, CT out) and ``ct2mr`` is G_MR. The network is rebuilt
from the resolved spec its checkpoint stores (every parameter written out), so a
checkpoint needs no code beyond the plugin that registered that generator, and a
default changed since training does not change what it loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import defaults
from ..choices import DIRECTIONS
from ..data.contract import InputContract
from ..errors import ImtransError

# each direction's network key in a checkpoint, source and target modality
ROLES = dict(zip(DIRECTIONS, (("g_ct", "mr", "ct"), ("g_mr", "ct", "mr")), strict=True))


def direction_of(direction: str) -> tuple[str, str, str]:
    """(network key, source modality, target modality) of ``--direction``; a clear error for another value."""
    if direction not in ROLES:
        raise ImtransError(f"--direction {direction}: choose {' or '.join(DIRECTIONS)}")
    return ROLES[direction]


@dataclass
class TrainedGenerator:
    """One generator with what it takes to use it on volumes."""

    net: Any  # torch.nn.Module in eval mode
    direction: str
    source: str  # modality in: "mr" or "ct"
    target: str  # modality out
    orientation: str
    spec: str
    step: int
    config: dict[str, Any] = field(default_factory=dict)
    contract: InputContract = field(default_factory=InputContract)  # what its inputs must look like

    @property
    def context(self) -> int:
        """Neighbours on each side fed with each slice (2.5-D); channels = 2 context + 1."""
        return self.contract.context


def checkpoint_of(model: Path) -> Path:
    """The checkpoint file a MODEL argument means: the file itself, or a run's newest checkpoint."""
    from ..training.checkpoint import list_checkpoints

    if model.is_dir():
        found = list_checkpoints(model)
        if not found:
            raise ImtransError(f"{model}: no checkpoints in this run directory (checkpoints/ckpt-*.pt)")
        return found[-1]
    if not model.exists():
        raise ImtransError(f"{model}: no such run directory or checkpoint file")
    return model


def load_generator(model: Path, direction: str = "mr2ct", device: str = "cpu") -> TrainedGenerator:
    """G_CT (``mr2ct``) or G_MR (``ct2mr``) of a trained run, ready for inference, rebuilt from the
    resolved spec its checkpoint stores."""
    import imtrans_core as ic

    from ..training.checkpoint import load_file
    from ..training.validate import generator_spec

    key, source, target = direction_of(direction)
    state = load_file(checkpoint_of(Path(model)), map_location=device)
    config = state.get("config", {})
    contract = InputContract.of_run(state)
    # the spec the network was built from; a checkpoint from before 0.2.0 has only the options given
    spec = state.get("networks", {}).get(key) or generator_spec(
        config.get("gen", defaults.GENERATOR), contract.context
    )
    net = ic.GENERATORS.build(spec)
    weights = state.get("ema", state["models"])  # the weights' average where the run kept one (--ema)
    net.load_state_dict(weights[key])
    net.to(device).eval()
    return TrainedGenerator(
        net,
        direction,
        source,
        target,
        contract.orientation,
        str(spec),
        int(state.get("step", 0)),
        config,
        contract,
    )
