"""Trained generators out of a run directory or a checkpoint file.

Each checkpoint names the network that translates each direction (``translators``, from
its model's ``translates``: cyclegan's ``mr2ct`` is ``g_ct``, a one-way model has one). The
network is rebuilt from the resolved spec its checkpoint stores (every parameter written
out), so a checkpoint needs no code beyond the plugin that registered that network, and a
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
from ..vml import settle_vml_dispatch

# each direction's source and target modality
MODALITIES = dict(zip(DIRECTIONS, (("mr", "ct"), ("ct", "mr")), strict=True))
# the translators of a checkpoint written before 0.3.0, which did not name them: every such run
# that translates is a cyclegan's (its networks g_ct and g_mr) or the example's one-way g_ct
BEFORE_0_3 = {"mr2ct": "g_ct", "ct2mr": "g_mr"}


def direction_of(direction: str) -> tuple[str, str]:
    """(source modality, target modality) of ``--direction``; a clear error for another value."""
    if direction not in MODALITIES:
        raise ImtransError(f"--direction {direction}: choose {' or '.join(DIRECTIONS)}")
    return MODALITIES[direction]


def translator_of(state: dict[str, Any], direction: str, model: Path) -> str:
    """The name of the network of checkpoint ``state`` that translates ``direction``; one line when none does."""
    stored = state.get("translators")
    translators = stored if stored is not None else BEFORE_0_3
    translators = {d: name for d, name in translators.items() if name in state["models"]}
    if direction in translators:
        return translators[direction]
    what = state.get("config", {}).get("model", "its model")
    can = " or ".join(f"--direction {d}" for d in translators)
    raise ImtransError(
        f"--direction {direction}: {model} ({what}) does not translate {direction}; "
        + (f"use {can}" if can else "its model translates no direction (see `imtrans plugins models`)")
    )


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
    """The network of a trained run that translates ``direction``, ready for inference, rebuilt from the
    resolved spec its checkpoint stores."""
    import imtrans_core as ic

    from ..training.checkpoint import load_file
    from ..training.validate import generator_spec

    settle_vml_dispatch()  # before the first slice makes a threaded first call
    source, target = direction_of(direction)
    state = load_file(checkpoint_of(Path(model)), map_location=device)
    key = translator_of(state, direction, Path(model))
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
