"""Where more intra-op threads start to pay: the fit's step at a few sizes, on 1 thread and on all of them.

    python benchmarks/threads.py                     # idle-ish machine as it is
    python benchmarks/threads.py --busy 1            # with one competing busy process (started and ended here)

Two steps, each as the fit runs it, without Lightning (the overheads around it do not depend on threads):

- the pair step (``solvers/pairs.py``): gather the batch's places, distances, ``mu``, the loss, its
  backward pass (a scatter into the dense ``(n, 2)`` gradient), each place's sum of ``mu``
  (``index_add_`` into ``zeros(n)``) and :class:`PairStep`'s move over every place;
- the full-batch step (``solvers/full.py``): ``torch.cdist`` and the course objective with its
  backward pass, at ``n`` places (``n (n - 1) / 2`` pairs).

Prints mean milliseconds per step and the ratio; writes ``results/threads.json``. The work per step is the
pairs a step touches; the crossover found here is :data:`citymap_lightning.threads.PAIRS_PER_THREAD`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "threads.json"


def pair_step(n: int, batch: int, steps: int) -> float:
    """Mean seconds of one pair step over ``steps`` (after 3 warm-up steps): the tail counts, as in a fit."""
    generator = torch.Generator().manual_seed(0)
    coords = torch.nn.Parameter(torch.randn(1, n, 2, generator=generator))
    i = torch.randint(0, n, (batch,), generator=generator)
    j = (i + torch.randint(1, n, (batch,), generator=generator)) % n
    d, w = torch.rand(batch, generator=generator) + 0.5, torch.ones(batch)
    times = []
    for k in range(steps + 3):
        start = time.perf_counter()
        x = coords
        fitted = (x[:, i] - x[:, j]).square().sum(-1).clamp_min(torch.finfo(x.dtype).tiny).sqrt()[0]
        mu = (w / d.square() * 0.1).clamp(max=1.0)
        loss = 0.5 * (mu * (fitted - d).square()).sum()
        node = torch.zeros(n, dtype=x.dtype)
        node.index_add_(0, i, mu).index_add_(0, j, mu)
        coords.grad = None
        loss.backward()
        with torch.no_grad():
            coords[0].sub_(coords.grad[0] / node.clamp_min(1.0).reshape(-1, 1))
        if k >= 3:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def full_step(n: int, steps: int) -> float:
    """Mean seconds of one full-batch evaluation (cdist, the course objective, backward) at ``n`` places."""
    generator = torch.Generator().manual_seed(0)
    coords = torch.nn.Parameter(torch.randn(n, 2, generator=generator))
    d = torch.cdist(torch.randn(n, 2, generator=generator), torch.randn(n, 2, generator=generator))
    times = []
    for k in range(steps + 3):
        start = time.perf_counter()
        fitted = torch.cdist(coords, coords, compute_mode="donot_use_mm_for_euclid_dist")
        loss = ((fitted.square() - d.square()).square()).sum() / 2
        coords.grad = None
        loss.backward()
        if k >= 3:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def busy_loop() -> subprocess.Popen:
    """A competing process spinning on one core, as another user's work on a shared machine."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=0, help="competing busy processes started for the run")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    most = torch.get_num_threads()
    cases = [("pairs", n, b) for n in (20_000, 200_000) for b in (1024, 4096, 16384, 65536, 262144)]
    cases += [("pairs", 1_000_000, b) for b in (16384, 262144)]
    cases += [("full", n, n * (n - 1) // 2) for n in (36, 100, 300, 1000)]
    others = [busy_loop() for _ in range(args.busy)]
    rows, load = [], os.getloadavg()[0]
    try:
        print(f"threads 1 vs {most}; competing busy processes: {args.busy}; load average {os.getloadavg()[0]:.1f}")
        print(f"{'step':>6} {'places':>9} {'pairs':>9} {'1 thread ms':>12} {f'{most} threads ms':>14} {'ratio':>7}")
        for kind, n, pairs in cases:
            timed = {}
            for threads in (1, most):
                torch.set_num_threads(threads)
                timed[threads] = pair_step(n, pairs, args.steps) if kind == "pairs" else full_step(n, args.steps)
            ratio = timed[most] / timed[1]
            rows.append({"step": kind, "places": n, "pairs": pairs, "ms_1": 1e3 * timed[1],
                         f"ms_{most}": 1e3 * timed[most], "ratio": ratio})  # fmt: skip
            print(f"{kind:>6} {n:>9} {pairs:>9} {1e3 * timed[1]:>12.2f} {1e3 * timed[most]:>14.2f} {ratio:>7.2f}")
    finally:
        for process in others:
            process.kill()
            process.wait()
    result = {"machine": platform.machine(), "cpus": os.cpu_count(), "threads": most, "busy": args.busy,
              "load_average": [round(load, 2), round(os.getloadavg()[0], 2)], "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d"), "rows": rows}  # fmt: skip
    runs = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs[f"busy{args.busy}"] = result
    args.out.write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
