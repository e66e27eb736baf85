#!/usr/bin/python3
"""PyTorch peer for bench/conv_bench.cpp: a long-lived process that times conv2d passes on request.

Usage: /usr/bin/python3 bench/peers/torch_conv.py THREADS
Reads one request per line on stdin and answers one line on stdout:
  time PASS N C K H W R S STRIDE PAD ITERS   ->  "ok SECONDS_PER_CALL"  (PASS: fwd | bwd_data | bwd_weight)
  quit
The benchmark alternates these requests with its own measurements so both sides see the same
machine load. Passes are the ones autograd runs: aten.convolution_backward with an output mask.
"""
import sys
import time

import torch


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    cache = {}
    warmed = set()
    print(f"ready torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts[0] != "time" or len(parts) != 12:
            print("error bad request", flush=True)
            continue
        pas = parts[1]
        n, c, k, h, w, r, s, stride, pad, iters = map(int, parts[2:])
        key = (n, c, k, h, w, r, s, stride, pad)
        if key not in cache:
            g = torch.Generator().manual_seed(1)
            x = torch.rand(n, c, h, w, generator=g) * 2 - 1
            wt = torch.rand(k, c, r, s, generator=g) * 2 - 1
            y = torch.nn.functional.conv2d(x, wt, None, stride, pad)
            dy = torch.rand(y.shape, generator=g) * 2 - 1
            cache = {key: (x, wt, dy)}  # one shape at a time keeps memory flat
        x, wt, dy = cache[key]
        st, pd = [stride, stride], [pad, pad]
        if pas == "fwd":
            fn = lambda: torch.nn.functional.conv2d(x, wt, None, stride, pad)
        elif pas == "bwd_data":
            fn = lambda: torch.ops.aten.convolution_backward(
                dy, x, wt, None, st, pd, [1, 1], False, [0, 0], 1, [True, False, False])
        elif pas == "bwd_weight":
            fn = lambda: torch.ops.aten.convolution_backward(
                dy, x, wt, [k], st, pd, [1, 1], False, [0, 0], 1, [False, True, True])
        else:
            print("error unknown pass", flush=True)
            continue
        if (key, pas) not in warmed:  # primitive creation and allocator warm-up, once per case
            fn()
            warmed.add((key, pas))
        t0 = time.perf_counter()
        for _ in range(max(1, iters)):
            fn()
        dt = (time.perf_counter() - t0) / max(1, iters)
        print(f"ok {dt:.9f}", flush=True)


if __name__ == "__main__":
    main()
