#!/usr/bin/python3
"""PyTorch twin of duet's generator workloads for `duet bench gen`: the training step of
`duet train --task generate` (flow matching: x_t = (1 - t) x0 + t eps with logit-normal t, target
eps - x0, label dropout to the null class, MSE, AdamW, EMA of the weights) and guided Euler
sampling (classifier-free guidance: one batch of 2B through the network per step, as duet's
guided predictor), on the UNet twin of a duet config (torch_unet.py).

Server mode (one process alternating with duet under the same load):
  /usr/bin/python3 bench/peers/torch_gen_bench.py --serve --config JSON --batch B [-t T]
  prints "ready torch VERSION threads T parameters P", then answers one line per request:
    train K      -> "ok SECONDS IMAGES MEAN_LOSS"   K training steps at batch B
    sample B N   -> "ok SECONDS"   N Euler steps for B images, CFG scale --cfg, torch.no_grad()
    mem          -> "ok BYTES"     peak resident set size (VmHWM) since start or the last reset
    memreset     -> "ok 1"         VmHWM reset to the current RSS (/proc/self/clear_refs; "ok 0"
                                   when the kernel refuses)
    quit
Training data are random images uniform in [-1, 1] with random labels (duet's side reads
Fashion-MNIST through its loader; the work per step is the same). Weights are PyTorch's default
initialisation, not duet's: the same model is not needed for timing.
Standalone: without --serve, times `--steps` training steps and one sampling run and prints them.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the benchmark shows this line and times duet alone
    print(f"error torch cannot be imported by {sys.executable}: {e}", flush=True)
    sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def duet_config(args):
    if args.config:
        return json.loads(args.config)
    duet = args.duet or next((p for p in (os.path.join(REPO, "build", d, "duet")
                                          for d in ("release", "hg", "hc", "debug"))
                              if os.access(p, os.X_OK)), None) or shutil.which("duet")
    if not duet:
        raise SystemExit("torch_gen_bench: no duet binary to ask for the config of --arch; "
                         "pass --duet PATH or --config JSON")
    out = subprocess.run([duet, "info", "--arch", args.arch, "--config"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"torch_gen_bench: {duet} info --arch {args.arch} --config failed: "
                         f"{out.stderr.strip()}")
    return json.loads(out.stdout)


def peak_rss_bytes():
    """VmHWM of this process (not ru_maxrss, which survives fork and exec from duet)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Gen:
    def __init__(self, args, cfg):
        self.args = args
        self.model = torch_models.build(cfg)
        self.model.train()
        self.channels = cfg.get("in_channels", 1)
        self.size = cfg.get("image_size", 28)
        self.classes = cfg.get("num_classes", 10)
        self.null = self.classes  # the "no class" row of the class embedding
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=args.lr, weight_decay=args.wd)
        self.params = [p for p in self.model.parameters()]
        self.ema = [p.detach().clone() for p in self.params] if args.ema > 0 else None
        self.gen = torch.Generator().manual_seed(args.seed)

    def train_step(self):
        b, g = self.args.batch, self.gen
        x0 = torch.rand(b, self.channels, self.size, self.size, generator=g) * 2 - 1
        y = torch.randint(0, self.classes, (b,), generator=g)
        y = torch.where(torch.rand(b, generator=g) < self.args.cfg_dropout,
                        torch.full_like(y, self.null), y)
        t = torch.sigmoid(torch.randn(b, generator=g))  # logit-normal(0, 1)
        eps = torch.randn(x0.shape, generator=g)
        tt = t.view(b, 1, 1, 1)
        x_t = (1 - tt) * x0 + tt * eps
        loss = F.mse_loss(self.model(x_t, t, y), eps - x0)
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        self.opt.step()
        if self.ema is not None:
            with torch.no_grad():
                torch._foreach_mul_(self.ema, self.args.ema)
                torch._foreach_add_(self.ema, self.params, alpha=1 - self.args.ema)
        return float(loss)

    @torch.no_grad()
    def sample(self, b, steps):
        self.model.eval()
        g = self.gen
        x = torch.randn(b, self.channels, self.size, self.size, generator=g)
        labels = torch.randint(0, self.classes, (b,), generator=g)
        both = torch.cat([labels, torch.full_like(labels, self.null)])
        s = self.args.cfg
        for i in range(steps):
            t = 1.0 - i / steps
            out = self.model(torch.cat([x, x]), torch.full((2 * b,), t), both)
            c, u = out[:b], out[b:]
            x = x + (-1.0 / steps) * (u + s * (c - u))
        self.model.train()
        return x


def serve(run):
    n_params = sum(p.numel() for p in run.model.parameters())
    print(f"ready torch {torch.__version__} threads {torch.get_num_threads()} "
          f"parameters {n_params}", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts == ["mem"]:
            print(f"ok {peak_rss_bytes()}", flush=True)
        elif parts == ["memreset"]:
            print(f"ok {1 if reset_peak_rss() else 0}", flush=True)
        elif parts[0] == "train" and len(parts) == 2 and parts[1].isdigit():
            t0 = time.perf_counter()
            k = int(parts[1])
            loss_sum = sum(run.train_step() for _ in range(k))
            dt = time.perf_counter() - t0
            print(f"ok {dt:.6f} {k * run.args.batch} {loss_sum / max(k, 1):.6f}", flush=True)
        elif parts[0] == "sample" and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            t0 = time.perf_counter()
            run.sample(int(parts[1]), int(parts[2]))
            print(f"ok {time.perf_counter() - t0:.6f}", flush=True)
        else:
            print("error bad request (expected: train K | sample B N | mem | memreset | quit)",
                  flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="unet-s")
    p.add_argument("--config", default="", help="duet's model config JSON (instead of --arch)")
    p.add_argument("--duet", default="", help="duet binary used to look up --arch's config")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--wd", type=float, default=0.0)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay (0: none)")
    p.add_argument("--cfg-dropout", type=float, default=0.1)
    p.add_argument("--cfg", type=float, default=2.0, help="guidance scale of sampling")
    p.add_argument("--steps", type=int, default=5, help="standalone: training and Euler steps")
    p.add_argument("-s", "--seed", type=int, default=1)
    p.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    p.add_argument("--serve", action="store_true", help="answer requests on stdin")
    args = p.parse_args()
    if args.batch < 1 or args.threads < 1 or args.steps < 1:
        raise SystemExit("torch_gen_bench: --batch, --threads and --steps must be >= 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run = Gen(args, duet_config(args))
    if args.serve:
        serve(run)
        return
    run.train_step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.steps):
        run.train_step()
    dt = time.perf_counter() - t0
    print(f"train: {args.steps * args.batch / dt:.1f} img/s at batch {args.batch}", flush=True)
    t0 = time.perf_counter()
    run.sample(args.batch, args.steps)
    dt = time.perf_counter() - t0
    print(f"sample: {args.batch / dt:.2f} images/s, {1000 * dt / args.steps:.0f} ms per step "
          f"({args.steps} Euler steps, CFG {args.cfg}), peak RSS {peak_rss_bytes() / 2**20:.0f} MiB",
          flush=True)


if __name__ == "__main__":
    main()
