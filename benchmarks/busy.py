"""A whole command beside busy processes: the thread policy's choice against ``OMP_NUM_THREADS=1`` (issue 29, item 7).

The command (by default the 5,000 European places of ``data/europe5000.csv`` from latitude/longitude
with ``configs/large.yaml``) is run in turns as each variant, beside ``--busy`` busy-loop processes
started here (two on the 2-core development machine: every core taken by other work):

- ``policy``: the package's own thread choice (no thread variable set);
- ``omp1``: ``OMP_NUM_THREADS=1`` (torch, OpenMP and OpenBLAS on one thread from start-up);
- ``before``: the package at ``--before PATH`` (a source tree, put first on ``PYTHONPATH``), its own choice.

Per run: wall seconds, CPU seconds of the command (user + system), the 1-minute load average as it
started, and what the policy reads (``threads.others_load()``, ``threads.free_cores()``). The variants
take turns, so that each sees the same load; the machine's other users' work is there too: read the
spread between repeats as the noise.

    python benchmarks/busy.py --busy 2 --repeats 3 --before /tmp/main_tree     # appends to results/busy.json
    python benchmarks/busy.py --busy 0 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from citymap_lightning import threads

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "busy.json"
CONFIG, DATA = ROOT / "configs" / "large.yaml", ROOT / "data" / "europe5000.csv"
COMMAND = ["fit", "--config", str(CONFIG), "--data.path", str(DATA)]


def busy_loops(count: int) -> list[subprocess.Popen]:
    """``count`` processes spinning on a core each, as other users' work on a shared machine."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run(variant: str, root: Path, command: list[str], before: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in threads.USER_SETTINGS}
    if variant == "omp1":
        env["OMP_NUM_THREADS"] = "1"
    if variant == "before":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (before, env.get("PYTHONPATH")) if p)
    reading = {"load_average": round(os.getloadavg()[0], 2), "others_load": round(threads.others_load(), 2),
               "free_cores": round(threads.free_cores(), 2)}  # fmt: skip
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "citymap_lightning", *command, "--trainer.default_root_dir",
                           str(root), "--trainer.enable_progress_bar", "false"],
                          capture_output=True, text=True, env=env, cwd=root.parent)  # fmt: skip
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"{variant}: the command failed")
    summary = next((line for line in done.stdout.splitlines() + done.stderr.splitlines() if "after" in line
                    and "stress-1" in line), "")  # fmt: skip
    return {"variant": variant, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), **reading,
            "summary": summary.split(";")[0].removeprefix("INFO: ")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=2, help="busy-loop processes beside the command")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--before", default=None, help="a source tree of the package before (adds the variant)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("command", nargs="*", default=COMMAND, help="the CLI's arguments (default: 5,000 places)")
    args = parser.parse_args()
    variants = ["policy", "omp1"] + (["before"] if args.before else [])
    others = busy_loops(args.busy)
    rows = []
    try:
        time.sleep(2.0 if args.busy else 0.0)
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                for variant in variants:
                    row = {"repeat": repeat, **run(variant, Path(tmp) / f"{variant}{repeat}", args.command,
                                                   args.before)}  # fmt: skip
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    finally:
        for process in others:
            process.kill()
            process.wait()
    summary = {v: sorted(r["seconds"] for r in rows if r["variant"] == v) for v in variants}
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "busy": args.busy, "cpus": os.cpu_count(),
              "nice": os.nice(0), "command": args.command, "seconds_by_variant": summary, "rows": rows}  # fmt: skip
    print(json.dumps(summary))
    runs = json.loads(args.out.read_text()) if args.out.exists() else []
    args.out.write_text(json.dumps([*runs, result], indent=1) + "\n")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
