#!/usr/bin/python3
"""PyTorch twin of duet's classification recipe (train::ClassifyRecipe, `duet train --task classify`):
the same architecture (torch_models.build of duet's model config), SGD with momentum (optionally
Nesterov) or AdamW, weight decay off for biases and norm layers, duet's schedule formulas (one-cycle
with cycled momentum, cosine, constant, linear warm-up), label smoothing, crop (zero padding 4) /
flip / erase augmentation, normalisation with the training set's mean and std, optional EMA.
Fashion-MNIST comes from the IDX files (gzipped or not) and is read with numpy.

Full run (prints duet-style epoch lines, then wall time, test accuracy and peak RSS):
  /usr/bin/python3 bench/peers/torch_train.py --arch resnet20 --epochs 5 --augment crop,flip -s 1 -t 2
Server mode, for `duet bench train` (one process alternating with duet under the same load):
  /usr/bin/python3 bench/peers/torch_train.py --serve --config JSON [recipe flags]
  prints "ready torch VERSION threads T images N", then answers one line per request:
    steps K  -> "ok SECONDS IMAGES MEAN_LOSS"   K training steps on the next batches (epochs
                                                wrap around), batch preparation included
    mem      -> "ok BYTES"     this process's peak resident set size
    quit
Differences from duet that do not change the work done: weights start from PyTorch's default
initialisation, and the shuffles and augmentation draws come from numpy, not duet's Philox.
"""
import argparse
import gzip
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the benchmark shows this line and times duet alone
    print(f"error torch cannot be imported by {sys.executable}: {e}", flush=True)
    sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---- data -------------------------------------------------------------------------------------

def read_idx(path):
    """An IDX file (u8 data) as a numpy array; `path` with or without .gz."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            with (gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")) as f:
                raw = f.read()
            break
    else:
        raise SystemExit(f"torch_train: {path}[.gz] not found")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SystemExit(f"torch_train: {path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SystemExit(f"torch_train: {path}: {data.size} bytes of data for dims {dims}")
    return data.reshape(dims)


def load_fashion_mnist(root, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    return images[:, None, :, :].copy(), labels  # [N, 1, H, W]


def data_dir(spec):
    """duet's --data spec for Fashion-MNIST: fashion-mnist[:DIR], default $DUET_DATA or the package."""
    if spec != "fashion-mnist" and not spec.startswith("fashion-mnist:"):
        raise SystemExit(f"torch_train: --data {spec}: only fashion-mnist[:DIR] is supported")
    if ":" in spec:
        return spec.split(":", 1)[1]
    return os.environ.get("DUET_DATA", "/usr/share/datasets/fashion-mnist")


def norm_stats(images):
    """Per-channel mean and population std of pixel/255, from exact integer sums (as duet's
    compute_norm_stats), in chunks so no float copy of the whole set is made."""
    c = images.shape[1]
    s1, s2 = np.zeros(c, dtype=np.int64), np.zeros(c, dtype=np.int64)
    for i in range(0, len(images), 4096):
        chunk = images[i:i + 4096].reshape(-1, c, images.shape[2] * images.shape[3])
        chunk = chunk.astype(np.int64)
        s1 += chunk.sum(axis=(0, 2))
        s2 += (chunk * chunk).sum(axis=(0, 2))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = s1 / n / 255.0
    var = np.maximum(s2 / n / (255.0 * 255.0) - mean * mean, 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


class Batches:
    """Shuffled, augmented, normalised batches as duet's loader makes them: pixel/255, crop from the
    image zero-padded by 4 (black), flip, normalise, then erase to 0 (the mean after normalising).
    No dropped last batch."""

    def __init__(self, images, labels, batch, seed, augment, mean, std):
        self.images, self.labels, self.batch, self.seed = images, labels, batch, seed
        self.crop = 4 if "crop" in augment else 0
        self.flip = "flip" in augment
        self.erase = 0.5 if "erase" in augment else 0.0
        # until:E as in duet: epochs 0..E-1 (0-based) augmented, the later ones plain.
        self.until = next((int(a[6:]) for a in augment if a.startswith("until:")), 0)
        c = images.shape[1]
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1)
        self.inv_std = 1.0 / torch.tensor(std, dtype=torch.float32).clamp_min(1e-6).view(1, c, 1, 1)
        self.per_epoch = (len(labels) + batch - 1) // batch

    def epoch(self, e):
        rng = np.random.default_rng([self.seed, e])
        order = rng.permutation(len(self.labels))
        plain = self.until > 0 and e >= self.until
        for i in range(self.per_epoch):
            yield self.make(order[i * self.batch:(i + 1) * self.batch], rng, plain)

    def make(self, idx, rng, plain=False):
        x = torch.from_numpy(self.images[idx]).float().mul_(1.0 / 255.0)
        y = torch.from_numpy(self.labels[idx])
        b, c, h, w = x.shape
        if plain:
            return ((x - self.mean) * self.inv_std).contiguous(), y
        if self.crop:
            p = self.crop
            padded = F.pad(x, (p, p, p, p))
            top = torch.from_numpy(rng.integers(0, 2 * p + 1, b))
            left = torch.from_numpy(rng.integers(0, 2 * p + 1, b))
            rows = (top[:, None] + torch.arange(h))[:, None, :, None]
            cols = (left[:, None] + torch.arange(w))[:, None, None, :]
            x = padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None],
                       rows, cols]
        if self.flip:
            flip = torch.from_numpy(rng.random(b) < 0.5).view(b, 1, 1, 1)
            x = torch.where(flip, x.flip(3), x)
        x = (x - self.mean) * self.inv_std
        if self.erase > 0:
            self.random_erase(x, rng)
        return x.contiguous(), y

    def random_erase(self, x, rng):
        """Zhong et al.: area 2-33 %, aspect ratio log-uniform in [0.3, 3.3], 10 attempts."""
        b, _, h, w = x.shape
        for i in range(b):
            if rng.random() >= self.erase:
                continue
            for _ in range(10):
                a = h * w * rng.uniform(0.02, 0.33)
                ratio = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
                eh, ew = round(math.sqrt(a * ratio)), round(math.sqrt(a / ratio))
                if 1 <= eh < h and 1 <= ew < w:
                    t, l = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
                    x[i, :, t:t + eh, l:l + ew] = 0.0
                    break


# ---- schedule (src/duet/train/schedule.cpp) -----------------------------------------------------

def anneal_cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def one_cycle(step, total, max_lr, pct_start=0.3, div=25.0, final_div=1e4,
              base_m=0.85, max_m=0.95):
    """(lr, momentum) of OneCycleLR (cos, two phases), as duet's one_cycle_lr / _momentum."""
    end1, end2 = pct_start * total - 1.0, total - 1.0
    pct = lambda s, b, e: (s - b) / (e - b) if e > b else 1.0  # noqa: E731
    initial = max_lr / div
    if step <= end1:
        p = pct(step, 0.0, end1)
        return anneal_cos(initial, max_lr, p), anneal_cos(max_m, base_m, p)
    p = pct(step, end1, end2)
    return anneal_cos(max_lr, initial / final_div, p), anneal_cos(base_m, max_m, p)


def schedule_at(kind, lr, warmup, step, total, momentum):
    """duet's LrSchedule::lr_at and momentum_at: (lr, momentum) for `step` of `total`."""
    rest = total - warmup

    def inner(s):
        if kind == "constant":
            return lr, momentum
        if kind == "cosine":
            return anneal_cos(lr, 0.0, s / rest), momentum
        return one_cycle(s, rest, lr)

    if step < warmup:
        first, m = inner(0)
        return first * (step + 1) / warmup, (0.95 if kind == "onecycle" else m)
    return inner(step - warmup)


# ---- model, optimizer, EMA --------------------------------------------------------------------

def duet_config(args):
    if args.config:
        return json.loads(args.config)
    duet = args.duet or next((p for p in (os.path.join(REPO, "build", d, "duet")
                                          for d in ("release", "hc", "debug"))
                              if os.access(p, os.X_OK)), None) or shutil.which("duet")
    if not duet:
        raise SystemExit("torch_train: no duet binary to ask for the config of --arch; "
                         "pass --duet PATH or --config JSON")
    out = subprocess.run([duet, "info", "--arch", args.arch, "--config"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"torch_train: {duet} info --arch {args.arch} --config failed: "
                         f"{out.stderr.strip()}")
    return json.loads(out.stdout)


def decay_groups(model, wd):
    """duet's split_decay_groups: no decay for biases and for parameters of *Norm* modules."""
    decay, no_decay = [], []
    for _, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            (no_decay if name == "bias" or "Norm" in type(module).__name__ else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


class Ema:
    """duet's Ema with warm-up: d_n = min(decay, (1 + n) / (10 + n)); buffers are copied."""

    def __init__(self, model, decay):
        self.decay, self.n = decay, 0
        self.params = [p.detach().clone() for p in model.parameters()]
        self.buffers = [b.detach().clone() for b in model.buffers()]

    @torch.no_grad()
    def update(self, model):
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for e, p in zip(self.params, model.parameters()):
            e.mul_(d).add_(p.detach(), alpha=1 - d)
        for e, b in zip(self.buffers, model.buffers()):
            e.copy_(b)

    @torch.no_grad()
    def swap(self, model):
        for e, p in zip(self.params + self.buffers, list(model.parameters()) + list(model.buffers())):
            tmp = p.detach().clone()
            p.copy_(e)
            e.copy_(tmp)


class Run:
    def __init__(self, args):
        torch.set_num_threads(args.threads)
        seed = args.seed if args.seed >= 0 else int.from_bytes(os.urandom(7), "little")
        self.args, self.seed = args, seed
        torch.manual_seed(seed)
        root = data_dir(args.data)
        images, labels = load_fashion_mnist(root, "train")
        if args.limit > 0:
            images, labels = images[:args.limit], labels[:args.limit]
        if args.val > 0:
            held = np.zeros(len(labels), dtype=bool)
            held[np.random.default_rng([seed, 1 << 20]).permutation(len(labels))[:args.val]] = True
            self.val = (images[held], labels[held])
            images, labels = images[~held], labels[~held]
        else:
            self.val = None
        self.norm = norm_stats(images)
        self.train = Batches(images, labels, args.batch, seed, args.augment, *self.norm)
        self.test = None
        if not args.serve:
            ti, tl = load_fashion_mnist(root, "test")
            if args.test_limit > 0:
                ti, tl = ti[:args.test_limit], tl[:args.test_limit]
            self.test = (ti, tl)
        self.num_classes = int(labels.max()) + 1

        config = duet_config(args)
        config.update({"in_channels": images.shape[1], "image_size": images.shape[2],
                       "num_classes": self.num_classes})
        self.model = torch_models.build(config)
        self.model.train()
        groups = decay_groups(self.model, args.wd)
        if args.optimizer == "sgd":
            self.opt = torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum,
                                       nesterov=args.nesterov)
        else:
            self.opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
        self.ema = Ema(self.model, args.ema) if args.ema > 0 else None
        self.total = args.epochs * self.train.per_epoch
        self.warmup = min(self.total - 1, round(args.warmup * self.train.per_epoch))
        self.step = 0

    def train_step(self, x, y):
        a = self.args
        # One-cycle runs past its end in server mode; the schedule then simply stays at the end.
        lr, m = schedule_at(a.schedule, a.lr, self.warmup, min(self.step, self.total), self.total,
                            a.momentum)
        for g in self.opt.param_groups:
            g["lr"] = lr
            if a.optimizer == "sgd":
                g["momentum"] = m
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=a.label_smoothing)
        value = loss.item()
        if not math.isfinite(value):
            raise SystemExit(f"step {self.step + 1}: the loss is {value} (diverged)")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.ema:
            self.ema.update(self.model)
        self.step += 1
        return value, int((logits.detach().argmax(1) == y).sum()), lr

    @torch.no_grad()
    def accuracy(self, images, labels):
        if self.ema:
            self.ema.swap(self.model)
        self.model.eval()
        mean, std = (torch.from_numpy(v).view(1, -1, 1, 1) for v in self.norm)
        correct = 0
        for i in range(0, len(labels), 256):
            x = (torch.from_numpy(images[i:i + 256]).float() / 255.0 - mean) / std
            correct += int((self.model(x).argmax(1) == torch.from_numpy(labels[i:i + 256])).sum())
        self.model.train()
        if self.ema:
            self.ema.swap(self.model)
        return correct / len(labels)


def peak_rss_bytes():
    """VmHWM, the peak RSS of this process's own address space. ru_maxrss is not used first: it
    survives fork and exec, so a peer started by a large process (duet) would report that
    process's peak instead of its own."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def full_run(run):
    a = run.args
    wall0 = time.perf_counter()
    print(f"train {a.arch if not a.config else 'config'} (pytorch {torch.__version__}) on {a.data}: "
          f"{len(run.train.labels)} images ({0 if run.val is None else len(run.val[1])} val, "
          f"{len(run.test[1])} test), "
          f"{sum(p.numel() for p in run.model.parameters())} parameters, seed {run.seed}, "
          f"{torch.get_num_threads()} threads", flush=True)
    test_acc = val_acc = None
    for e in range(a.epochs):
        t0 = time.perf_counter()
        loss_sum, correct, seen, lr = 0.0, 0, 0, 0.0
        for x, y in run.train.epoch(e):
            loss, c, lr = run.train_step(x, y)
            loss_sum += loss * len(y)
            correct += c
            seen += len(y)
        secs = time.perf_counter() - t0
        line = (f"epoch {e + 1}/{a.epochs} loss {loss_sum / seen:.3f} acc {correct / seen:.3f} "
                f"lr {lr:.3g} {seen / secs:.0f} img/s")
        if run.val is not None:
            val_acc = run.accuracy(*run.val)
            line += f" val_acc {val_acc:.4f}"
        if len(run.test[1]) > 0:
            test_acc = run.accuracy(*run.test)
            line += f" test_acc {test_acc:.4f}"
        print(line, flush=True)
    wall = time.perf_counter() - wall0
    rss = peak_rss_bytes()
    print(f"wall {wall:.1f} s", flush=True)
    if test_acc is not None:
        print(f"test_acc {test_acc:.4f}", flush=True)
    print(f"peak memory {rss / 2**20:.1f} MiB RSS (process)", flush=True)
    if a.json:
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                          "seed": run.seed, "epochs": a.epochs, "wall_s": wall,
                          "test_acc": test_acc, "val_acc": val_acc, "peak_rss_bytes": rss}))


def serve(run):
    batches = iter(())
    epoch = 0

    def next_batch():
        nonlocal batches, epoch
        for b in batches:
            return b
        batches = run.train.epoch(epoch)
        epoch += 1
        return next(batches)

    print(f"ready torch {torch.__version__} threads {torch.get_num_threads()} "
          f"images {len(run.train.labels)}", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts[0] == "mem" and len(parts) == 1:
            print(f"ok {peak_rss_bytes()}", flush=True)
        elif parts[0] == "steps" and len(parts) == 2 and parts[1].isdigit():
            t0 = time.perf_counter()
            images, loss_sum = 0, 0.0
            for _ in range(int(parts[1])):
                x, y = next_batch()
                loss_sum += run.train_step(x, y)[0] * len(y)
                images += len(y)
            dt = time.perf_counter() - t0
            print(f"ok {dt:.6f} {images} {loss_sum / max(images, 1):.6f}", flush=True)
        else:
            print("error bad request (expected: steps K | mem | quit)", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--config", default="", help="duet's model config JSON (instead of --arch)")
    p.add_argument("--duet", default="", help="duet binary used to look up --arch's config")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--schedule", default="onecycle",
                   choices=("onecycle", "one_cycle", "one-cycle", "cosine", "constant"))
    p.add_argument("--warmup", type=float, default=0.0, help="linear warm-up, in epochs")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--augment", default="", help="comma list of crop, flip, erase, until:E")
    p.add_argument("--ema", type=float, default=0.0)
    p.add_argument("--val", type=int, default=0)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("-s", "--seed", type=int, default=-1)
    p.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    p.add_argument("--serve", action="store_true", help="answer 'steps K' requests on stdin")
    p.add_argument("--json", action="store_true", help="full run: a JSON summary as the last line")
    args = p.parse_args()
    args.schedule = "onecycle" if args.schedule.startswith("one") else args.schedule
    args.augment = [a for a in args.augment.split(",") if a and a != "none"]
    bad = [a for a in args.augment
           if a not in ("crop", "flip", "erase") and not re.fullmatch(r"until:[1-9][0-9]*", a)]
    if bad:
        raise SystemExit(f"torch_train: --augment: unknown augmentation {bad[0]!r}")
    if args.epochs < 1 or args.batch < 1 or args.threads < 1:
        raise SystemExit("torch_train: --epochs, --batch and --threads must be >= 1")
    run = Run(args)
    serve(run) if args.serve else full_run(run)


if __name__ == "__main__":
    main()
