"""How long the light commands take: ``microsight --help``, ``methods``, ``config care``.

Each command runs as a fresh process (as a user types it) several times; the
best and the median wall-clock times are reported, with the machine's load
average so that a busy machine is visible. ``python -c "import microsight"``
is checked not to import torch. Run from the repository root with the
project's environment active::

    python benchmarks/cli_startup.py --repeat 7 --record
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import command_line, write_result

COMMANDS = {"--help": ["--help"], "methods": ["methods"], "config care": ["config", "care"],
            "config care --schema": ["config", "care", "--schema"]}


def time_command(args: list[str], repeat: int) -> list[float]:
    """Wall-clock seconds of ``microsight ARGS`` in fresh processes."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "microsight", *args], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


def imports_torch() -> bool:
    """Whether ``import microsight`` imports torch."""
    code = "import sys, microsight; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip() == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--record", action="store_true", help="write results/cli-startup.json")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    measured = {}
    for name, cli in COMMANDS.items():
        times = sorted(time_command(cli, args.repeat))
        measured[f"{name} best s"] = round(times[0], 3)
        measured[f"{name} median s"] = round(times[len(times) // 2], 3)
        print(f"microsight {name:22s} best {times[0]:.3f} s, median "
              f"{times[len(times) // 2]:.3f} s")
    torch_loaded = imports_torch()
    print(f"import microsight imports torch: {torch_loaded}; load average {load:.1f}")
    if args.record:
        write_result(
            "cli-startup",
            [{"model": "microsight CLI", "kind": "microsight",
              "command": command_line(__file__, sys.argv[1:]), "recipe": None,
              "measured": {**measured, "import torch": int(torch_loaded)},
              "train_s": None, "conditions": f"load average {load:.1f}"}],
            title="Start-up of the light commands (no PyTorch)",
            data="none: the commands only read the method registry and configs",
            split="none",
            metrics={**{k: "wall-clock seconds, fresh process" for k in measured},
                     "import torch": "1 if `import microsight` imports torch"},
            notes=["Goal: under 1 s each on an idle 2-core CPU."])


if __name__ == "__main__":
    main()
