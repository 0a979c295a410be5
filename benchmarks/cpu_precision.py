"""Speed of CARE's U-Net on this machine in fp32 / channels_last / bf16 (not a test).

Times training steps (batch 16 of 64x64, Adam) and forward passes of 4 x 256^2
tiles for the four combinations of memory layout (contiguous or channels_last)
and precision (fp32 or bf16 autocast), with the U-Net of the CAREamics side by
side (depth 2, 32 features). Shows what ``precision: auto`` and channels_last
buy on a CPU with native bf16 (and cost on one without).

    python benchmarks/cpu_precision.py [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from microsight.api import build_config
from microsight.config import get_method
from microsight.engine.training import cpu_has_bf16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    args = parser.parse_args()
    cfg = build_config("care", {"method": {"method": "care", "depth": 2, "base_channels": 32}})
    net = get_method("care").module_class(cfg, 1, 1).network
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, y = torch.randn(16, 1, 64, 64), torch.randn(16, 1, 64, 64)
    tiles = torch.randn(4, 1, 256, 256)
    print(f"native bf16: {cpu_has_bf16()}, threads: {torch.get_num_threads()}")
    for nhwc in (False, True):
        fmt = torch.channels_last if nhwc else torch.contiguous_format
        net.to(memory_format=fmt)
        for bf16 in (False, True):
            def step(nhwc=nhwc, bf16=bf16):
                inp = x.contiguous(memory_format=torch.channels_last) if nhwc else x
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = net(inp)
                loss = torch.nn.functional.mse_loss(out.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            for _ in range(3):
                step()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            train = 16 * args.steps / (time.perf_counter() - t0)
            inp = tiles.contiguous(memory_format=fmt)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                        enabled=bf16):
                net(inp)
                t0 = time.perf_counter()
                for _ in range(5):
                    net(inp)
                forward = 5 * tiles.numel() / (time.perf_counter() - t0) / 1e6
            print(f"channels_last={nhwc!s:5} bf16={bf16!s:5}: training {train:6.1f} patches/s,"
                  f" forward {forward:5.2f} Mpx/s", flush=True)


if __name__ == "__main__":
    main()
