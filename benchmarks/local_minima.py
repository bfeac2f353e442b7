"""How often does a single random start miss the optimum? (issue: "See the fit", local minima)

For each data set, loss and optimiser, fits from random starts (seeds 0..S-1), from the classical
start, and with K restarts (Adam, batched), using the package's own loss and start functions in a
plain loop (the Lightning glue does not change the arithmetic). A run "misses" when its stress-1 is
more than 1% above the best stress-1 any run reached with that loss on that data.

    python benchmarks/local_minima.py [--seeds 20] [--places 300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from citymap_lightning import geometry as geo
from citymap_lightning import losses, metrics, starts
from citymap_lightning.readers import load_table

DATA = Path(__file__).resolve().parent.parent / "data"
OPTIMISERS = {  # the course's settings; L-BFGS as in the default config
    "sgd": (lambda p: torch.optim.SGD([p], lr=0.1), 4000),
    "adam": (lambda p: torch.optim.Adam([p], lr=0.1), 400),
    "lbfgs": (
        lambda p: torch.optim.LBFGS(
            [p], lr=1, max_iter=5, history_size=20, line_search_fn="strong_wolfe", tolerance_grad=0, tolerance_change=0
        ),
        60,
    ),
}


def run(loss: str, optimiser: str, x0: np.ndarray, d: torch.Tensor, w: torch.Tensor) -> float:
    """Final stress-1 of each restart in ``x0`` (restarts, n, 2)."""
    make, epochs = OPTIMISERS[optimiser]
    x = torch.nn.Parameter(torch.from_numpy(x0).clone())
    opt = make(x)
    fn = losses.loss_fn(loss)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = fn(geo.Plane().distances(x), d, w).sum()
        value.backward()
        return value

    for _ in range(epochs):
        opt.step(closure)
    with torch.no_grad():
        s = metrics.stress1(geo.Plane().distances(x), d, w, dims=(-1, -2)).numpy()
    return np.where(np.isfinite(s), s, np.inf)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--places", type=int, default=300)
    parser.add_argument("--large-seeds", type=int, default=10, help="random starts on the larger set")
    parser.add_argument("--optimisers", nargs="+", default=list(OPTIMISERS), choices=list(OPTIMISERS))
    parser.add_argument("--sets", nargs="+", default=["europe36", "large"], choices=["europe36", "large"])
    parser.add_argument("--restarts", type=int, default=8)
    args = parser.parse_args()
    europe = load_table(DATA / "europe36.csv")
    big = load_table(DATA / "europe5000.csv")
    keep = np.arange(args.places)
    from citymap_lightning.readers import from_latlon

    sets = {"europe36": europe, f"europe{args.places}": from_latlon([big.names[i] for i in keep], big.latlon[keep])}
    sets = {k: v for k, v in sets.items() if ("europe36" if k == "europe36" else "large") in args.sets}
    print("| data | loss | optimiser | single random starts missing the optimum | classical start | "
          f"{args.restarts} restarts (Adam) | best stress-1 | time |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, table in sets.items():
        matrix = table.matrix()
        scale = float(np.linalg.norm(matrix))
        d = torch.from_numpy(matrix / scale)
        w = torch.ones_like(d)
        classical = starts.classical_mds(matrix, 2)[None] / scale
        seeds = args.seeds if table.n <= 36 else args.large_seeds
        for loss in losses.LOSSES:
            results = {}
            for optimiser in args.optimisers:
                t = time.perf_counter()
                singles = np.array(
                    [run(loss, optimiser, starts.random_start(table.n, 2, np.random.default_rng(s))[None], d, w)[0]
                     for s in range(seeds)]
                )  # fmt: skip
                from_classical = run(loss, optimiser, np.ascontiguousarray(classical), d, w)[0]
                results[optimiser] = (singles, from_classical, time.perf_counter() - t)
            x0 = np.stack(
                [starts.random_start(table.n, 2, np.random.default_rng(1000 + k)) for k in range(args.restarts)]
            )
            restart_best = float(run(loss, "adam", x0, d, w).min())
            best = min(min(r[0].min(), r[1]) for r in results.values())
            best = min(best, restart_best)
            for optimiser, (singles, from_classical, seconds) in results.items():
                misses = int((singles > 1.01 * best).sum())
                print(
                    f"| {name} | {loss} | {optimiser} | {misses}/{seeds} (worst {singles.max():.5f}) | "
                    f"{from_classical:.5f}{' (miss)' if from_classical > 1.01 * best else ''} | "
                    f"{restart_best:.5f}{' (miss)' if restart_best > 1.01 * best else ''} | "
                    f"{best:.5f} | {seconds:.0f} s |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
