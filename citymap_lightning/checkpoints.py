"""Checkpoints: what a fit keeps beside its coordinates, and how a checkpoint is loaded and checked.

A checkpoint is loaded weights-only (an untrusted file never runs code), refused in one line when it
is of other places or another optimiser, and keeps the places' names, the scale and what fixes the
frame, so that ``predict`` can draw its map again or put new places on it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Trainer

from citymap_lightning import paths
from citymap_lightning.errors import ConfigError
from citymap_lightning.tables import DistanceTable


def match_checkpoint(checkpoint: dict[str, Any], model: Any, names: list[str] | None, reorder: bool = False) -> None:
    """Refuse a checkpoint of other places (in one line); with ``reorder``, permute its places into ``names``' order.

    A checkpoint of the same places listed in another order (a pair list read in another row order)
    is reordered for ``predict`` and refused for resuming a fit, whose recorded history keeps the old order.
    """
    coords = checkpoint.get("state_dict", {}).get("coords")
    saved = tuple(coords.shape) if coords is not None else ()
    if saved != tuple(model.coords.shape):
        restarts, places, dim = saved if len(saved) == 3 else (None, None, None)
        raise ConfigError(
            f"the checkpoint holds {places} places x {dim} dimensions ({restarts} restart(s)), but this run has "
            f"{model.hparams.num_places} places x {model.coords.shape[-1]} ({model.hparams.restarts}): "
            "was it made from other data?"
        )
    kept = checkpoint.get("place_names")
    if kept is None or names is None or list(kept) == list(names):
        return
    position = {name: k for k, name in enumerate(kept)}
    missing = [name for name in names if name not in position]
    if missing:
        raise ConfigError(f"the checkpoint was made from other places: {missing[0]!r} is not among them")
    if not reorder:
        raise ConfigError(
            "the checkpoint lists the same places in another order: resume with the file it was made from "
            "(predict takes either order)"
        )
    checkpoint["state_dict"]["coords"] = coords[:, [position[name] for name in names]]
    checkpoint["place_names"] = list(names)


def find_last_checkpoint(trainer: Trainer) -> Path:
    """The ``last.ckpt`` of the highest-numbered earlier run beside this run's log directory."""
    logger = trainer.logger
    root = Path(getattr(logger, "root_dir", None) or trainer.default_root_dir)
    candidates = sorted(
        root.glob("version_*/checkpoints/last.ckpt"),
        key=lambda p: int(p.parent.parent.name.split("_")[-1]) if p.parent.parent.name[8:].isdigit() else -1,
    )
    if not candidates:
        raise ConfigError(f"{root}: no earlier run with checkpoints/last.ckpt to resume from (--ckpt_path last)")
    if trainer.global_rank == 0:
        print(f"Resuming from {candidates[-1].resolve()}")
    return candidates[-1]


def check_checkpoint(
    path: Path,
    model: Any = None,
    datamodule: Any = None,
    resume: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Load a checkpoint weights-only (an untrusted file never runs code) and refuse one that cannot be used.

    With ``model`` and ``datamodule``: a checkpoint of other places is refused (one of the same places
    in another order only for resuming); with the configured ``optimizer``, to resume, one made with
    another optimiser, whose saved state would not fit it.
    """
    paths.check_file(path, "checkpoint")
    try:
        with warnings.catch_warnings():  # torch's remarks on a foreign file's pickle protocol: the line below says it
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds here, for truncated, random or hostile files
        raise ConfigError(f"{path}: not a checkpoint of this program, or a damaged one ({type(e).__name__})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "coords" not in checkpoint["state_dict"]:
        raise ConfigError(f"{path}: not a checkpoint of this program (no fitted coordinates in it)")
    if model is None or datamodule is None:
        return checkpoint
    # a copy down to the state_dict: matching may reorder its coordinates, which the load that follows must not see
    copy = {**checkpoint, "state_dict": dict(checkpoint["state_dict"])}
    match_checkpoint(copy, model, datamodule.table.names, reorder=not resume)
    saved = checkpoint.get("optimizer_states") or []
    if not resume or not saved or optimizer is None:
        return checkpoint
    saved_keys = set(saved[0].get("param_groups", [{}])[0]) - {"params"}
    if saved_keys != set(optimizer.param_groups[0]) - {"params"}:
        raise ConfigError(
            f"{path}: the checkpoint was made with another optimiser than {type(optimizer).__name__} (its settings: "
            f"{', '.join(sorted(saved_keys))}): resume with the config it was made with, or fit anew without "
            "--ckpt_path"
        )
    return checkpoint


def metadata(table: DistanceTable, scale: float) -> dict[str, Any]:
    """What a checkpoint keeps to put new places on its map later: names, scale and what fixes the frame."""
    meta: dict[str, Any] = {"place_names": list(table.names), "scale": float(scale), "unit": table.unit}
    if table.latlon is not None:
        meta["place_latlon"] = torch.from_numpy(np.asarray(table.latlon, dtype=np.float64))
    if table.located is not None:
        located = table.located
        meta["located"] = {
            "places": torch.from_numpy(np.asarray(located.places)),
            "latlon": torch.from_numpy(np.asarray(located.latlon)),
            "labels": list(located.labels),
        }
        if located.geonameid is not None:
            meta["located"]["geonameid"] = torch.from_numpy(np.asarray(located.geonameid, dtype=np.int64))
            meta["located"]["regions"] = list(located.regions or [])
            meta["located"]["countries"] = list(located.countries or [])
    if table.anchors is not None:
        placed = table.anchors
        meta["anchors"] = {
            "index": torch.from_numpy(placed.index), "coords": torch.from_numpy(placed.coords),
            "latlon": None if placed.latlon is None else torch.from_numpy(placed.latlon),
            "centre": None if placed.centre is None else list(placed.centre), "source": placed.source,
        }  # fmt: skip
    return meta


def fitted_table(checkpoint: dict[str, Any], source: str) -> tuple[DistanceTable, float | None] | None:
    """A table of a checkpoint's places (names and frame, no distances) and the fit's scale.

    None for a checkpoint that names no places; the scale is None in one made before it was kept.
    """
    from citymap_lightning.anchors import Placed
    from citymap_lightning.gazetteer import Match
    from citymap_lightning.tables import PairTable

    names, scale = checkpoint.get("place_names"), checkpoint.get("scale")
    if names is None:
        return None
    latlon = checkpoint.get("place_latlon")
    table = PairTable(names=list(names), latlon=None if latlon is None else latlon.double().numpy(), source=source,
                      unit=checkpoint.get("unit", ""))  # fmt: skip
    located = checkpoint.get("located")
    if located is not None:
        table.located = Match(located["places"].numpy(), located["latlon"].numpy(), list(located["labels"]), [])
        if "geonameid" in located:  # kept since the matches' GeoNames ids were
            table.located.geonameid = located["geonameid"].numpy()
            table.located.regions, table.located.countries = list(located["regions"]), list(located["countries"])
    anchors = checkpoint.get("anchors")
    if anchors is not None:
        centre = anchors["centre"]
        table.anchors = Placed(
            anchors["index"].numpy(), anchors["coords"].numpy(),
            None if anchors["latlon"] is None else anchors["latlon"].numpy(),
            None if centre is None else (float(centre[0]), float(centre[1])), anchors["source"],
        )  # fmt: skip
    return table, None if scale is None else float(scale)
