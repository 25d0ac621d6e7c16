"""Training step time of the structured layers of sparsemlp.approx against a CSR layer of the same
parameter count (forward + backward with the input gradient + SGD update, float32).

    python benchmarks/bench_approx_layers.py --n 1000 --share 0.1 --batch 32 --threads 1

The structures are built from a random matrix with cheap solver settings (the step time depends
on the structure, not on the values). Results: one JSON line per layer in
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


def step_ms(layer, batch, repeats, rng):
    """Median ms of forward + backward (with dX) + SGD step of one layer."""
    model = SparseMLP([layer], [make_activation("identity")])
    opt = make_optimizer("sgd", model.parameters(), lr=1e-6)
    _, grads = model.make_grads()
    xt = rng.standard_normal((layer.n_in, batch)).astype(np.float32)
    dy = rng.standard_normal((layer.n_out, batch)).astype(np.float32)
    dx = np.empty_like(xt)
    times = []
    for _ in range(repeats + 2):
        t = time.perf_counter()
        out = np.empty((layer.n_out, batch), np.float32)
        layer.forward(xt, out)
        layer.backward(xt, dy, grads[0], grads[1], dx)
        opt.step(grads, batch)
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times[2:]))


def chain_ms(a, batch, repeats, rng):
    """The alternative for sparse_product: its factors as separate SparseLinear layers (identity
    activations, zero biases) in a SparseMLP."""
    Ws = [sp.csr_array(f.T.astype(np.float32)) for f in reversed(a.factors)]
    for W in Ws:
        W.sort_indices()
    model = SparseMLP.from_weights(Ws, activation="identity", output_activation="identity")
    opt = make_optimizer("sgd", model.parameters(), lr=1e-6)
    _, grads = model.make_grads()
    xt = rng.standard_normal((a.shape[1], batch)).astype(np.float32)
    dy = rng.standard_normal((a.shape[0], batch)).astype(np.float32)
    times = []
    for _ in range(repeats + 2):
        t = time.perf_counter()
        model.forward(xt, train=True)
        model.backward(dy, grads)
        opt.step(grads, batch)
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times[2:]))


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
        rows = []
        for name, a in structures(args.n, args.share, rng):
            layer = a.to_layer()
            t = step_ms(layer, args.batch, args.repeats, rng)
            t_csr = step_ms(csr_layer(args.n, layer.nnz, rng), args.batch, args.repeats, rng)
            extra = {}
            if a.kind == "sparse_product":
                extra["chain_ms"] = chain_ms(a, args.batch, args.repeats, rng)
            rows.append((name, layer.nnz, t, t_csr, extra))
            append_jsonl(args.out, dict(cond, bench="approx_layers", layer=name, n=args.n,
                                        share=args.share, batch=args.batch,
                                        threads=args.threads, n_params=layer.nnz, step_ms=t,
                                        csr_step_ms=t_csr, **extra))
            print(f"{name:22s} params {layer.nnz:7d}  step {t:8.3f} ms  CSR {t_csr:7.3f} ms  "
                  f"ratio {t / t_csr:6.2f}" + "".join(f"  {k} {v:.3f}" for k, v in extra.items()),
                  flush=True)


if __name__ == "__main__":
    main()
