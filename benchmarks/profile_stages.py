"""The stage table of a whole ``fit`` profiled by ``python -m cProfile -o FILE`` (``million.py --profile``).

    python benchmarks/profile_stages.py benchmarks/results/profile_pairs200k.prof

Each stage is the cumulative time of the functions that make it (a function's time includes what it
calls). cProfile adds a cost to every Python call, so stages made of many small Python calls (the
epochs' per-step bookkeeping, reading line by line) look slower than they run unprofiled.
"""

from __future__ import annotations

import pstats
import sys

STAGES = [
    ("whole command", ["citymap_lightning/cli.py:main"]),
    ("reading the file (load_table, validation included)", ["citymap_lightning/readers/__init__.py:load_table"]),
    ("  of which validation", ["citymap_lightning/validation.py:validate_pairs",
                               "citymap_lightning/validation.py:validate_places"]),
    ("gazetteer lookup of the names", ["citymap_lightning/datamodule.py:locate"]),
    ("neighbour search (k-d tree)", ["citymap_lightning/tables.py:_find_nearest"]),
    ("start (pivot MDS)", ["citymap_lightning/starts.py:initial_coords"]),
    ("  of which shortest paths to the 100 pivots", ["citymap_lightning/tables.py:path_columns"]),
    ("epochs (30), validation and checkpoints included", ["lightning/pytorch/loops/training_epoch_loop.py:run"]),
    ("  making the batches", ["citymap_lightning/solvers/pairs.py:train_batches"]),
    ("    of which the pair lookups (distances, weights)", ["citymap_lightning/tables.py:pair_distances",
                                                           "citymap_lightning/tables.py:pair_weights"]),
    ("  forward (training_step)", ["citymap_lightning/solvers/pairs.py:training_step"]),
    ("  backward", ["torch/_tensor.py:backward"]),
    ("  the step (PairStep.move)", ["citymap_lightning/solvers/pairs.py:move"]),
    ("  logging (self.log, logger)", ["lightning/pytorch/core/module.py:log",
                                      "lightning/pytorch/trainer/connectors/logger_connector/logger_connector.py:update_train_step_metrics"]),
    ("stress estimate (3 validations)", ["lightning/pytorch/loops/evaluation_loop.py:run"]),
    ("checkpoints (6 files)", ["lightning/pytorch/callbacks/model_checkpoint.py:_save_checkpoint"]),
    ("outputs at the end (MapRenderer.render)", ["citymap_lightning/callbacks.py:render"]),
    ("  coordinates.csv", ["citymap_lightning/output.py:write_coordinates"]),
    ("  coordinates.geojson", ["citymap_lightning/callbacks.py:_write_geojson"]),
    ("  TensorBoard projector (tensors.tsv, metadata.tsv)", ["torch/utils/tensorboard/writer.py:add_embedding",
                                                             "citymap_lightning/callbacks.py:_add_projector"]),
    ("  map.png, shepard.png, city_error.png (draw, render, PNG, TensorBoard image)",
     ["citymap_lightning/render.py:draw_map", "citymap_lightning/render.py:shepard_diagram",
      "citymap_lightning/callbacks.py:_publish"]),
    ("  the fitted map (alignment, shares)", ["citymap_lightning/model.py:fitted_map"]),
]  # fmt: skip


def cumulative(stats: pstats.Stats, patterns: list[str]) -> tuple[float, int]:
    """Cumulative seconds and (outermost) calls of the functions ``path:name``."""
    total, calls = 0.0, 0
    for (path, _, name), (_, primitive, _, cum, _) in stats.stats.items():
        if any(path.endswith(p.rsplit(":", 1)[0]) and name == p.rsplit(":", 1)[1] for p in patterns):
            total += cum
            calls += primitive
    return total, calls


def main() -> None:
    stats = pstats.Stats(sys.argv[1])
    whole = cumulative(stats, STAGES[0][1])[0]
    print("| stage | seconds (profiled) | share | calls |\n|---|---|---|---|")
    for label, patterns in STAGES:
        seconds, calls = cumulative(stats, patterns)
        print(f"| {label} | {seconds:.1f} | {100 * seconds / whole:.0f}% | {calls} |")


if __name__ == "__main__":
    main()
