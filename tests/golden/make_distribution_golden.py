#!/usr/bin/python3
"""Regenerates tests/golden/distribution_golden.safetensors: FID / KID / precision-recall /
diversity reference values computed with NumPy on two fixed feature sets.

Run from the repository root (Debian's python3-numpy; SciPy is not needed):
    /usr/bin/python3 tests/golden/make_distribution_golden.py

Feature sets (float32, as a reference network would give them): "a" [300, 8] and "b" [240, 8],
drawn from two Gaussians with different means and full (non-diagonal) covariances, seed 1234.
Stored float64 scalars, computed in float64 from the float32 values:
  fid           |mu_a - mu_b|^2 + tr(Sa + Sb - 2 (Sa Sb)^{1/2}), covariances with n - 1. The trace
                of the square root is sum(sqrt(eigvals(Sa @ Sb))) with NumPy's general
                (non-symmetric, LAPACK geev) eigen-solver: a different route from duet's
                symmetric Jacobi on Sa^{1/2} Sb Sa^{1/2}.
  fid_self      FID of "a" with itself (0 up to rounding)
  mmd2_full     unbiased MMD^2 with k(x, y) = (x.y / 8 + 1)^3 on the whole of both sets
  precision, recall   Kynkaenniemi et al. 2019 with k = 3, "a" as the real (reference) set:
                radii = distance to the 3rd nearest other point of the same set; a point is
                inside a manifold when within the radius of some of its points (<=)
  diversity_a, diversity_b   mean Euclidean distance over pairs i < j
  eig_values    eigenvalues (ascending) of the symmetric 8 x 8 matrix "sym" from numpy.linalg.eigh
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_optim_golden import write_safetensors  # noqa: E402  (the repository's writer)

HERE = os.path.dirname(os.path.abspath(__file__))
F = 8


def main():
    rng = np.random.default_rng(1234)
    la = rng.normal(size=(F, F)) / np.sqrt(F)
    lb = rng.normal(size=(F, F)) / np.sqrt(F) + 0.3 * np.eye(F)
    a = (rng.normal(size=(300, F)) @ la.T + 0.5).astype(np.float32)
    b = (rng.normal(size=(240, F)) @ lb.T + 0.2 * np.arange(F)).astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)

    def fid(x, y):
        mx, my = x.mean(0), y.mean(0)
        sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        ev = np.linalg.eigvals(sx @ sy)
        tr_root = np.sqrt(np.clip(ev.real, 0.0, None)).sum()
        return float(((mx - my) ** 2).sum() + np.trace(sx) + np.trace(sy) - 2.0 * tr_root)

    def kernel(x, y):
        return (x @ y.T / F + 1.0) ** 3

    m, n = len(a64), len(b64)
    kxx, kyy, kxy = kernel(a64, a64), kernel(b64, b64), kernel(a64, b64)
    mmd2 = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2.0 * kxy.mean())

    def dists(x, y):
        return np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))

    def radii(x, k=3):
        d = dists(x, x)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    ra, rb = radii(a64), radii(b64)
    precision = float((dists(b64, a64) <= ra[None, :]).any(axis=1).mean())
    recall = float((dists(a64, b64) <= rb[None, :]).any(axis=1).mean())

    def diversity(x):
        d = dists(x, x)
        return float(d[np.triu_indices(len(x), 1)].mean())

    q = rng.normal(size=(F, F))
    sym = q + q.T
    eig_values = np.linalg.eigh(sym)[0]

    scalars = {"fid": fid(a64, b64), "fid_self": fid(a64, a64), "mmd2_full": mmd2,
               "precision": precision, "recall": recall, "diversity_a": diversity(a64),
               "diversity_b": diversity(b64)}
    named = [("a", a), ("b", b), ("sym", sym.astype(np.float64)),
             ("eig_values", eig_values.astype(np.float64))]
    named += [(k, np.array(v, dtype=np.float64)) for k, v in scalars.items()]
    write_safetensors(os.path.join(HERE, "distribution_golden.safetensors"), named,
                      {"generator": "tests/golden/make_distribution_golden.py",
                       "numpy": np.__version__})
    for k, v in scalars.items():
        print(f"{k} = {v!r}")


if __name__ == "__main__":
    main()
