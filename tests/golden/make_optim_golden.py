#!/usr/bin/python3
"""Regenerates tests/golden/optim_golden.safetensors: PyTorch optimizer steps and OneCycleLR values.

Run from the repository root with Debian's python3-torch (1.13):
    /usr/bin/python3 tests/golden/make_optim_golden.py

Four small float32 parameters: "a" [4, 7] and "c" [2, 3, 3, 3] are weights ("decay" group),
"b" [13] and "d" [1] are biases ("no decay" group, weight decay 0). Every run starts from the same
"init.<p>" values and applies N = 5 steps with the fixed gradients "grad.<k>.<p>" (k = 0..4) and
the per-step learning rates "<run>.lr" [5]; "c" has no gradient at step 1 (p.grad = None, the key
is absent), so the optimizer must skip it. Runs:
  sgd_nesterov  SGD(momentum 0.9, nesterov, dampening 0), decay group weight_decay 5e-4
  sgd_momentum  SGD(momentum 0.9, no nesterov),           decay group weight_decay 5e-4
  adamw         AdamW(betas (0.9, 0.999), eps 1e-8),      decay group weight_decay 0.05
Stored after the 5 steps: "<run>.final.<p>" and the state "<run>.state.<p>.<name>" (SGD
momentum_buffer; AdamW exp_avg, exp_avg_sq).
OneCycleLR(max_lr 0.1, total_steps 20, pct_start 0.25, div_factor 25, final_div_factor 1e4, cos,
cycle_momentum with base 0.85 / max 0.95) on an SGD optimizer: "onecycle.lr" [20] and
"onecycle.momentum" [20], the group's values at steps 0..19, stored as float64.
Learning rates are float32-representable so that both sides use exactly the same scalars.
"""
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
N_STEPS = 5
SHAPES = {"a": (4, 7), "b": (13,), "c": (2, 3, 3, 3), "d": (1,)}
DECAY, NO_DECAY = ["a", "c"], ["b", "d"]
SKIPPED = {(1, "c")}  # (step, param) pairs without a gradient


def write_safetensors(path, named, metadata):
    """named: list of (name, numpy array). Writes them contiguously in order after a JSON header
    that is space-padded to a multiple of 8 bytes."""
    kinds = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64"}
    header, blobs, pos = {"__metadata__": metadata}, [], 0
    for name, arr in named:
        arr = np.ascontiguousarray(arr)
        raw = arr.tobytes()
        header[name] = {"dtype": kinds[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def f32(x):
    return float(np.float32(x))


def run(name, make_opt, lrs, init, grads, out):
    params = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
    opt = make_opt([{"params": [params[k] for k in DECAY]}, {"params": [params[k] for k in NO_DECAY],
                                                              "weight_decay": 0.0}])
    for step in range(N_STEPS):
        for group in opt.param_groups:
            group["lr"] = lrs[step]
        for k, p in params.items():
            p.grad = None if (step, k) in SKIPPED else grads[step][k].clone()
        opt.step()
    out.append((f"{name}.lr", np.array(lrs, dtype="<f4")))
    for k in SHAPES:
        out.append((f"{name}.final.{k}", params[k].detach().numpy().astype("<f4")))
    for k in SHAPES:
        for sname, value in opt.state[params[k]].items():
            if sname == "step":
                continue
            out.append((f"{name}.state.{k}.{sname}", value.numpy().astype("<f4")))


def main():
    torch.manual_seed(20240611)
    torch.set_num_threads(1)
    init = {k: torch.randn(s) for k, s in SHAPES.items()}
    grads = [{k: torch.randn(s) * 0.5 for k, s in SHAPES.items()} for _ in range(N_STEPS)]
    out = [(f"init.{k}", v.numpy().astype("<f4")) for k, v in init.items()]
    for step in range(N_STEPS):
        for k in SHAPES:
            if (step, k) not in SKIPPED:
                out.append((f"grad.{step}.{k}", grads[step][k].numpy().astype("<f4")))

    sgd_lrs = [f32(x) for x in (0.1, 0.08, 0.05, 0.03, 0.01)]
    adam_lrs = [f32(x) for x in (1e-3, 2e-3, 3e-3, 2e-3, 1e-3)]
    run("sgd_nesterov", lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True,
                                                  weight_decay=5e-4), sgd_lrs, init, grads, out)
    run("sgd_momentum", lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, weight_decay=5e-4),
        sgd_lrs, init, grads, out)
    run("adamw", lambda g: torch.optim.AdamW(g, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                             weight_decay=0.05), adam_lrs, init, grads, out)

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20, pct_start=0.25,
                                                div_factor=25.0, final_div_factor=1e4,
                                                base_momentum=0.85, max_momentum=0.95)
    lrs, moms = [], []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    out.append(("onecycle.lr", np.array(lrs, dtype="<f8")))
    out.append(("onecycle.momentum", np.array(moms, dtype="<f8")))

    write_safetensors(os.path.join(HERE, "optim_golden.safetensors"), out,
                      {"generator": "tests/golden/make_optim_golden.py", "torch": torch.__version__,
                       "steps": str(N_STEPS)})


if __name__ == "__main__":
    main()
