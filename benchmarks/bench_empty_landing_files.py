"""Issue 29 item 9: 10,000 empty files in the landing directory, through ``chimera run``.

Three homes, each fresh, each running the same CLI command twice over demo files (ZL, MES, one
week): ``clean`` (no empty files), ``empties`` (N empty ``*.dbn.zst`` placeholders beside the good
files). Prints per run the wall time, the log size and the number of log lines naming a placeholder,
and the ratios ``empties rerun / clean rerun`` and ``empties first / clean first`` (the acceptance:
the rerun close to a normal rerun, one summary line per run, not one per file per raw asset).

    .venv/bin/python benchmarks/bench_empty_landing_files.py [--files 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from chimera_assets.demo.data import write_demo_files

ROOT = Path(__file__).resolve().parents[1]


def _run(home: Path, landing: Path) -> tuple[float, int, int]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(CHIMERA_HOME=str(home), PYTHONWARNINGS="ignore")
    argv = [str(Path(sys.executable).parent / "chimera"), "run", "--start", "2024-03-04", "--end", "2024-03-08",
            "--roots", "ZL,MES", "--landing-dir", str(landing), "--no-training", "--ephemeral-instance"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if "result: SUCCESS" not in proc.stdout:
        raise SystemExit(f"run failed ({proc.returncode}):\n{log[-3000:]}")
    return seconds, len(log), sum(1 for line in log.splitlines() if "placeholder-" in line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    n = ap.parse_args().files
    out: dict[str, list[tuple[float, int, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("clean", "empties"):
            base = Path(tmp) / case
            landing = base / "landing"
            write_demo_files(landing, ["ZL", "MES"], date(2024, 3, 1), date(2024, 3, 9), files="daily")
            if case == "empties":
                for i in range(n):
                    (landing / f"placeholder-{i:05d}.dbn.zst").touch()
            out[case] = [_run(base / "home", landing) for _ in range(2)]
            for label, (s, size, lines) in zip(("first", "rerun"), out[case], strict=True):
                print(f"{case:8s} {label:6s} {s:7.1f} s  log {size / 1e3:8.1f} kB  lines naming a placeholder: {lines}")
    for i, label in enumerate(("first", "rerun")):
        print(f"ratio empties/clean, {label}: {out['empties'][i][0] / out['clean'][i][0]:.2f}x "
              f"({n:,} empty files)")


if __name__ == "__main__":
    main()
