"""Training step time of the structured layers of sparsemlp.approx against a CSR layer of the same
parameter count (forward + backward with the input gradient + SGD update, float32).

    python benchmarks/bench_approx_layers.py --n 1000 --share 0.1 --batch 32 --threads 1

The structures are built from a random matrix with cheap solver settings (the step time depends
on the structure, not on the values); the learning rate is tiny so that the constant gradient of
the benchmark does not move them. The layers run in turns (structured, [chain,] CSR, structured,
...) and the ratio is the median of the per-turn ratios, which a shared machine's slow and fast
phases affect alike. Results: one JSON line per layer in
benchmarks/results/approx_layers.jsonl and a table on stdout.
"""

import argparse
import time

import numpy as np
import scipy.sparse as sp
from _common import append_jsonl, conditions

from sparsemlp import SparseMLP, approx
from sparsemlp._parallel import thread_limit
from sparsemlp.nn.functions import make_activation
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.nn.optim import make_optimizer


def structures(n, share, rng):
    W = rng.standard_normal((n, n))
    out = [("low_rank", approx.low_rank(W, share=share))]
    for K in (20, 50, 100, 250):
        out.append((f"sss K={K}", approx.sss(W, share=share, n_states=K)))
    for K in (2, 3):
        out.append((f"sparse_product K={K}",
                    approx.sparse_product(W, share=share, n_factors=K, last_share=0.5, n_iter=2)))
    out.append(("hodlr", approx.hodlr(W, share=share)))
    out.append(("hedlr", approx.hedlr(W, share=share)))
    out.append(("hmatrix", approx.hmatrix(W, share=share)))
    out.append(("toeplitz_like", approx.toeplitz_like(W, share=share, refine_iter=1)))
    return out


def csr_layer(n, nnz, rng):
    """A uniform random n x n CSR layer with exactly nnz connections."""
    keys = np.sort(rng.choice(n * n, size=nnz, replace=False))
    W = sp.csr_array((rng.standard_normal(nnz).astype(np.float32) * 0.05,
                      (keys // n, keys % n)), shape=(n, n))
    W.sum_duplicates()
    return SparseLinear(W)


def stepper(layer, batch, rng):
    """A function running one forward + backward (with dX) + SGD step of one layer."""
    model = SparseMLP([layer], [make_activation("identity")])
    opt = make_optimizer("sgd", model.parameters(), lr=1e-12)  # values stay as built
    _, grads = model.make_grads()
    xt = rng.standard_normal((layer.n_in, batch)).astype(np.float32)
    dy = rng.standard_normal((layer.n_out, batch)).astype(np.float32)
    dx = np.empty_like(xt)

    def step():
        out = np.empty((layer.n_out, batch), np.float32)
        layer.forward(xt, out)
        layer.backward(xt, dy, grads[0], grads[1], dx)
        opt.step(grads, batch)
    return step


def chain_stepper(a, batch, rng):
    """The alternative for sparse_product: its factors as separate SparseLinear layers (identity
    activations, zero biases) in a SparseMLP."""
    Ws = [sp.csr_array(f.T.astype(np.float32)) for f in reversed(a.factors)]
    for W in Ws:
        W.sort_indices()
    model = SparseMLP.from_weights(Ws, activation="identity", output_activation="identity")
    opt = make_optimizer("sgd", model.parameters(), lr=1e-12)  # values stay as built
    _, grads = model.make_grads()
    xt = rng.standard_normal((a.shape[1], batch)).astype(np.float32)
    dy = rng.standard_normal((a.shape[0], batch)).astype(np.float32)

    def step():
        model.forward(xt, train=True)
        model.backward(dy, grads)
        opt.step(grads, batch)
    return step


def interleaved(steps, repeats):
    """Median ms of each step function, run in turns (A, B, A, B, ...) so that the phases of a
    shared machine hit all of them, and the median of the per-turn ratios to the last one."""
    for f in steps:
        f(), f()
    times = np.empty((repeats, len(steps)))
    for r in range(repeats):
        for j, f in enumerate(steps):
            t = time.perf_counter()
            f()
            times[r, j] = 1e3 * (time.perf_counter() - t)
    return np.median(times, axis=0), np.median(times / times[:, -1:], axis=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results/approx_layers.jsonl")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cond = conditions()
    with thread_limit(args.threads):
        for name, a in structures(args.n, args.share, rng):
            layer = a.to_layer()
            steps = [stepper(layer, args.batch, rng)]
            if a.kind == "sparse_product":
                steps.append(chain_stepper(a, args.batch, rng))
            steps.append(stepper(csr_layer(args.n, layer.nnz, rng), args.batch, rng))
            ms, ratio = interleaved(steps, args.repeats)
            rec = dict(cond, bench="approx_layers", layer=name, n=args.n, share=args.share,
                       batch=args.batch, threads=args.threads, n_params=layer.nnz,
                       step_ms=ms[0], csr_step_ms=ms[-1], ratio=ratio[0])
            if len(steps) == 3:
                rec.update(chain_ms=ms[1], chain_ratio=ratio[1])
            append_jsonl(args.out, rec)
            print(f"{name:22s} params {layer.nnz:7d}  step {ms[0]:8.3f} ms  CSR {ms[-1]:7.3f} ms  "
                  f"ratio {ratio[0]:6.2f}"
                  + (f"  chain of SparseLinear {ms[1]:.3f} ms (ratio {ratio[1]:.2f})"
                     if len(steps) == 3 else ""), flush=True)


if __name__ == "__main__":
    main()
