"""sparsemlp against masked dense PyTorch layers: 784-h-h-h-10 training steps at batch 128.

Issue 4, target 4. Every (h, implementation, threads) point runs in its own subprocess (under
``flock --lock``), which measures its RSS after imports, data and two steps of a tiny model
of the same implementation (lazy imports: torch.optim's first step loads ~80 MiB of modules)
as the baseline, builds the model, runs ``--warmup`` steps, then times ``--steps`` steps one
by one (fewer when they would take more than ``--max-seconds``; at least ``--min-steps``) and
reports the median and minimum seconds per step, peak RSS (``VmHWM``, the high-water mark
of this process's own memory: ``getrusage``'s ``ru_maxrss`` would carry the RSS of the
process that forked it) and the RSS growth above the baseline. Data: ``--samples`` random
N(0, 1) float32 rows of 784 features (z-scored Fashion-MNIST has the same shape and scale;
the step cost does not depend on the values) with random labels in 0..9, already in memory;
each step takes the next batch of a fixed random order. Implementations:

* ``sparse``: sparsemlp default mode (softmax + cross-entropy, ReLU, He-uniform Bernoulli ER
  layers with epsilon 20, dropout 0.2, coupled L2 2e-4, SGD momentum 0.9, lr 0.05 constant),
  float32, ``--backend`` (cython), ``threads`` = N. A step is ``Trainer.fit`` on one batch for
  one more epoch: its ``seconds_train`` is exactly the trainer's own batch loop (batch
  transpose, one-hot, forward, loss, output delta, backward with the layer-by-layer SGD
  update). Evolution is never part of it (the last epoch of a fit does not evolve). Also
  recorded: the mean step of one real epoch over all ``--samples`` (``epoch_step_s``) and
  the time of one SET evolution (``evolution_s``: the three weight layers before the output,
  which default mode does not evolve; once per epoch in training, not part of a step).
* ``dense``: ``torch.nn.Linear`` layers 784-h-h-h-10 with ReLU and ``nn.Dropout(0.2)``,
  He-uniform weights, zero biases, one fixed 0/1 mask per layer with the same ER density
  ``min(1, epsilon (n_in + n_out) / (n_in n_out))`` drawn by ``torch.rand < p`` (as
  sparselearning's ``Masking``), weights masked at init and multiplied by the mask after
  every optimizer step (the practice of the Keras SET code, a weight constraint applied
  after each update, and of sparselearning's ``Masking.step``: ``optimizer.step()`` then
  ``apply_mask()``). A step is ``zero_grad``, forward, ``F.cross_entropy``, backward,
  ``torch.optim.SGD(lr=0.05, momentum=0.9, weight_decay=2e-4).step()``, ``W.mul_(mask)`` for
  every layer and the loss as a Python float; ``torch.set_num_threads(N)``. Variants:
  ``standard`` = float32 masks applied by ``W.mul_(mask)`` and torch's default SGD (on CPU the
  loop over parameters, which allocates a gradient-sized temporary for the weight decay);
  ``lean`` = bool masks of the pruned positions applied by ``W.masked_fill_(pruned, 0)``
  (``mul_`` by a bool mask allocates a float copy of it) and ``SGD(fused=True)`` (the same
  update in one pass, no temporary): 13 instead of 16 (+4 for the largest layer) bytes per
  dense weight, same arithmetic.

Where the full dense model does not fit (its estimated memory above ``--dense-max-gib``,
or the free memory minus ``--margin-gib``), the full point is recorded as skipped with the
reason and the ``lean`` variant is timed with one h x h layer (784-h-h-10, ``hh=1``) and
with none (784-h-10, ``hh=0``); the step of the full model (two h x h layers) is then
estimated as ``2 t(hh=1) - t(hh=0)`` (likewise its RSS growth), recorded as an ``estimate``
line. ``--validate-h`` runs the same reduced points, plus the lean full model, where the
full model does fit, to check that estimate against a measurement.

Guards in each dense subprocess: the point is skipped (one JSON line with the reason) if
``MemAvailable`` is below the estimate plus ``--margin-gib``; the address space is limited
(``RLIMIT_AS``) to the current size plus 1.3x the estimate plus 2 GiB; ``oom_score_adj`` is
set to 1000 so that, should the kernel still run out of memory, this process is the one
killed, not another user's.

Example::

    python benchmarks/bench_dense.py --h 1000 3000 10000 30000 --threads 1 2 --repeats 3
    python benchmarks/bench_dense.py --quick
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import append_jsonl, conditions, wait_idle  # noqa: E402

N_FEATURES, N_CLASSES, BATCH, EPSILON = 784, 10, 128, 20.0
GIB = 2.0 ** 30


# -- small helpers -----------------------------------------------------------------------------
def _status(key):
    """A /proc/self/status field in bytes (VmRSS, VmSize...)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def mem_available():
    """MemAvailable from /proc/meminfo in bytes (None if unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def sizes_for(h, hh=2):
    """Layer sizes 784-h-...-h-10 with ``hh`` h x h layers (the full model has 2)."""
    return [N_FEATURES] + [h] * (hh + 1) + [N_CLASSES]


def er_density(n_in, n_out, epsilon=EPSILON):
    """SET's Erdos-Renyi density, clipped to 1 (the h x 10 output layer is fully dense)."""
    return min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))


def dense_bytes_estimate(sizes, variant):
    """Bytes a masked dense training step needs: weights, gradients, momentum, masks
    (4 + 4 + 4 + 4 or 1 bytes per weight), torch's weight-decay temporary of the largest
    layer (standard variant only), biases and activations."""
    shapes = list(zip(sizes[:-1], sizes[1:]))
    entries = sum(a * b for a, b in shapes)
    mask_b = 4 if variant == "standard" else 1
    temp = 4 * max(a * b for a, b in shapes) if variant == "standard" else 0  # SGD's wd temp
    acts = 4 * BATCH * sum(sizes) * 6
    return entries * (12 + mask_b) + temp + acts + 16 * sum(sizes) + 64 * 2 ** 20


def _timed_steps(step, warmup, steps, min_steps, max_seconds):
    """Run ``warmup`` untimed steps, then timed ones: ``steps``, or fewer (>= min_steps) when
    they would take longer than ``max_seconds``. ``step()`` returns its own seconds."""
    t_w = [step() for _ in range(warmup)]
    est = min(t_w) if t_w else 0.0
    n = steps if est <= 0 else min(steps, max(min_steps, int(max_seconds / est)))
    return t_w, [step() for _ in range(n)]


def _batches(n, seed):
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(n)
    return [order[s:s + BATCH] for s in range(0, n - BATCH + 1, BATCH)]


def _data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_FEATURES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, n).astype(np.int64)
    return X, y


# -- workers (one point per subprocess) --------------------------------------------------------
def worker_sparse(a):
    from sparsemlp import TrainConfig, Trainer
    from sparsemlp._parallel import thread_limit

    X, y = _data(a.samples, a.seed)
    batches = _batches(a.samples, a.seed)
    # a tiny model's step and evolution first, so lazy imports are in the baseline
    tiny = Trainer.from_config(TrainConfig(hidden=(32,), batch_size=BATCH, epochs=2,
                                           backend=a.backend, threads=a.threads), N_FEATURES,
                               N_CLASSES, verbose=False)
    tiny.fit(X[:BATCH], y[:BATCH])
    del tiny
    base = _status("VmRSS")
    busy0 = wait_idle(a.wait_idle)
    la0 = os.getloadavg()
    cfg = TrainConfig(hidden=(a.h,) * 3, batch_size=BATCH, epsilon=EPSILON, lr_schedule="constant",
                      threads=a.threads, backend=a.backend, dtype="float32", epochs=1,
                      seed=a.seed, checkpoint_every=0).resolve()
    t0 = time.perf_counter()
    tr = Trainer.from_config(cfg, N_FEATURES, N_CLASSES, verbose=False)
    init_s = time.perf_counter() - t0
    nnz = [int(v) for v in tr.model.nnz()]
    state = {"i": 0}

    def step():
        idx = batches[state["i"] % len(batches)]
        state["i"] += 1
        tr.fit(X[idx], y[idx], epochs=tr.epoch + 1)
        return tr.history.records[-1]["seconds_train"]

    with thread_limit(a.threads):
        warm, times = _timed_steps(step, a.warmup, a.steps, a.min_steps, a.max_seconds)
        la1 = os.getloadavg()
        step_peak = _status("VmHWM")
        # one real epoch over all samples: mean step (cross-check of the 1-batch fits)
        tr.fit(X, y, epochs=tr.epoch + 1)
        epoch_step = tr.history.records[-1]["seconds_train"] / len(batches)
        evo = []
        for _ in range(a.evolution_repeats):  # epoch 1 of a 2-epoch fit evolves, epoch 2 not
            idx = batches[0]
            tr.fit(X[idx], y[idx], epochs=tr.epoch + 2)
            evo.append(tr.history.records[-2]["seconds_evolution"])
    return dict(
        init_s=init_s, nnz=sum(nnz), nnz_layers=nnz,
        params=sum(nnz) + sum(la.n_out for la in tr.model.layers),
        dense_params=int(tr.model.dense_params()), warmup_s=warm, step_s=times,
        epoch_step_s=epoch_step, evolution_s=evo,
        evolution_s_median=float(np.median(evo)) if evo else None,
        base_rss=base, peak_rss_steps=step_peak,
        peak_rss=_status("VmHWM"),
        loadavg_before=la0, loadavg_after=la1, cpu_busy_before=busy0,
        backend=tr.model.kernels.name, dtype=cfg.dtype,
        config={k: getattr(cfg, k) for k in ("lr", "lr_schedule", "momentum", "weight_decay",
                                             "decay", "dropout", "init", "er_law", "loss",
                                             "output_activation", "activation")})


def _skip(reason, **kw):
    return dict(skipped=True, reason=reason, **kw)


def worker_dense(a):
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    X, y = _data(a.samples, a.seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    batches = [torch.from_numpy(b) for b in _batches(a.samples, a.seed)]
    # a tiny step first: lazy imports (torch.optim pulls in ~80 MiB of modules at its first
    # step), thread pool and BLAS state exist before the baseline and the guard
    tiny = nn.Linear(N_FEATURES, 8)
    tiny_opt = torch.optim.SGD(tiny.parameters(), lr=0.05, momentum=0.9, weight_decay=2e-4,
                               **({"fused": True} if a.variant == "lean" else {}))
    for _ in range(2):
        tiny_opt.zero_grad(set_to_none=True)
        F.cross_entropy(tiny(Xt[:BATCH]), yt[:BATCH] % 8).backward()
        tiny_opt.step()
        with torch.no_grad():
            tiny.weight.mul_(torch.ones_like(tiny.weight, dtype=torch.bool))
    del tiny, tiny_opt
    sizes = sizes_for(a.h, a.hh)
    est = dense_bytes_estimate(sizes, a.variant)
    avail = mem_available()
    base = _status("VmRSS")
    busy0 = wait_idle(a.wait_idle)
    la0 = os.getloadavg()
    common = dict(est_bytes=est, mem_available=avail, sizes=sizes, base_rss=base,
                  loadavg_before=la0, cpu_busy_before=busy0)
    if avail is not None and avail < est + a.margin_gib * GIB:
        return _skip(f"estimated {est / GIB:.1f} GiB + {a.margin_gib} GiB margin > "
                     f"{avail / GIB:.1f} GiB available", **common)
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass
    limit = int(_status("VmSize") + 1.3 * est + 2 * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    common["rlimit_as"] = limit
    lean = a.variant == "lean"
    mask_dtype = torch.bool if lean else torch.float32

    def apply_mask(w, m):
        if lean:
            w.masked_fill_(m, 0.0)
        else:
            w.mul_(m)
    try:
        t0 = time.perf_counter()
        linears, masks, mods = [], [], []
        with torch.no_grad():
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                lin = nn.Linear(n_in, n_out)
                lim = math.sqrt(6.0 / n_in)
                lin.weight.uniform_(-lim, lim)
                lin.bias.zero_()
                p = er_density(n_in, n_out)
                # standard: the 0/1 mask itself (float32); lean: True where pruned (bool), used
                # by masked_fill_ (mul_ by a bool mask would allocate a float copy of it)
                m = torch.empty((n_out, n_in), dtype=mask_dtype)
                step_rows = max(1, 2 ** 24 // n_in)  # draw in chunks: no full float temporary
                for r in range(0, n_out, step_rows):
                    u = torch.rand(min(step_rows, n_out - r), n_in)
                    m[r:r + step_rows] = (u >= p) if lean else (u < p)
                apply_mask(lin.weight, m)
                linears.append(lin)
                masks.append(m)
                mods.append(lin)
                if i < len(sizes) - 2:
                    mods += [nn.ReLU(), nn.Dropout(0.2)]
        model = nn.Sequential(*mods).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=2e-4,
                              **({"fused": True} if lean else {}))
        init_s = time.perf_counter() - t0
        active = [int(m.numel() - m.sum()) if lean else int(m.sum()) for m in masks]
        state = {"i": 0}

        def step():
            idx = batches[state["i"] % len(batches)]
            state["i"] += 1
            t = time.perf_counter()
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for lin, m in zip(linears, masks):
                    apply_mask(lin.weight, m)
            float(loss)
            return time.perf_counter() - t

        warm, times = _timed_steps(step, a.warmup, a.steps, a.min_steps, a.max_seconds)
    except (RuntimeError, MemoryError) as exc:  # the address-space guard tripped
        return _skip(f"{type(exc).__name__}: {str(exc)[:300]}",
                     peak_rss=_status("VmHWM"),
                     **common)
    dense_params = sum(p.numel() for p in model.parameters())
    return dict(
        init_s=init_s, nnz=sum(active), nnz_layers=active,
        params=sum(active) + sum(lin.out_features for lin in linears),
        dense_params=dense_params, warmup_s=warm, step_s=times,
        peak_rss=_status("VmHWM"),
        loadavg_after=os.getloadavg(), torch=torch.__version__,
        torch_threads=torch.get_num_threads(), mask_dtype=str(mask_dtype),
        mask_apply="masked_fill_(pruned, 0)" if lean else "mul_(mask)",
        sgd="fused" if lean else "default (for-loop)", **common)


# -- parent ------------------------------------------------------------------------------------
def run_point(impl, h, threads, args, *, variant="standard", hh=2, rep=0):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--h", str(h),
           "--threads", str(threads), "--hh", str(hh), "--variant", variant,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--min-steps",
           str(args.min_steps), "--max-seconds", str(args.max_seconds), "--samples",
           str(args.samples), "--seed", str(args.seed), "--backend", args.backend,
           "--margin-gib", str(args.margin_gib), "--wait-idle", str(args.wait_idle), "--evolution-repeats",
           str(args.evolution_repeats)]
    if args.lock:
        cmd = ["flock", args.lock] + cmd
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        r = _skip(f"subprocess exit {p.returncode}: {p.stderr.strip()[-500:]}")
    else:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    r.update(bench="dense", impl=impl, h=h, threads=threads, variant=variant if impl == "dense"
             else None, hh=hh, repeat=rep, batch=BATCH, epsilon=EPSILON, samples=args.samples,
             sizes=sizes_for(h, hh), wall_s=time.perf_counter() - t0,
             command=" ".join(sys.argv))
    if not r.get("skipped"):
        st = r["step_s"]
        r.update(n_steps=len(st), step_s_median=float(np.median(st)), step_s_min=float(np.min(st)),
                 rss_growth=r["peak_rss"] - r["base_rss"],
                 bytes_per_conn=(r["peak_rss"] - r["base_rss"]) / r["nnz"])
    return r


def _fmt_mib(b):
    return f"{b / 2**20:,.0f} MiB" if b < 10 * GIB else f"{b / GIB:.2f} GiB"


def _describe(r):
    if r.get("skipped"):
        return f"skipped: {r['reason']}"
    return (f"{r['step_s_median']:.4f} s/step (min {r['step_s_min']:.4f}, {r['n_steps']} steps), "
            f"peak RSS {_fmt_mib(r['peak_rss'])}, growth {_fmt_mib(r['rss_growth'])}, "
            f"{r['nnz']:,} connections, load {r['loadavg_before'][0]:.2f}")


def _median_of(rows, key):
    vals = [r[key] for r in rows if not r.get("skipped")]
    return float(np.median(vals)) if vals else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--h", type=int, nargs="+", default=[1000, 3000, 10000, 30000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--impls", nargs="+", default=["sparse", "dense"], choices=["sparse", "dense"])
    ap.add_argument("--repeats", type=int, default=3, help="subprocess runs per point")
    ap.add_argument("--steps", type=int, default=50, help="timed steps per run (at most)")
    ap.add_argument("--min-steps", type=int, default=3, help="timed steps per run (at least)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help="fewer timed steps (down to --min-steps) if they would take longer")
    ap.add_argument("--samples", type=int, default=2048, help="rows of random data in memory")
    ap.add_argument("--backend", default="cython")
    ap.add_argument("--evolution-repeats", type=int, default=2,
                    help="SET evolutions timed per sparse run (0 = none)")
    ap.add_argument("--dense-max-gib", type=float, default=12.0,
                    help="largest estimated dense model memory to run")
    ap.add_argument("--margin-gib", type=float, default=4.0,
                    help="free memory left to others: skip a dense point that would not")
    ap.add_argument("--validate-h", type=int, nargs="*", default=[10000],
                    help="also run the reduced lean points (hh = 0, 1, 2) here, to check the "
                         "estimate used where the full dense model does not fit")
    ap.add_argument("--wait-idle", type=float, default=0.0,
                    help="each point first waits up to this many seconds until other processes "
                         "use < 10%% of the CPUs (measured, recorded as cpu_busy_before)")
    ap.add_argument("--quick", action="store_true",
                    help="h 1000 3000, 2 threads, 1 run, 10 steps (about a minute)")
    ap.add_argument("--from-jsonl", metavar="FILE",
                    help="only print the summary table of the lines in FILE (see --since)")
    ap.add_argument("--since", default="",
                    help="with --from-jsonl: only lines whose conditions.time >= this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lock", default="/tmp/sparsemlp-bench.lock",
                    help="run each point under 'flock LOCK' ('' = no lock)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "dense.jsonl"))
    ap.add_argument("--worker", choices=["sparse", "dense"], help=argparse.SUPPRESS)
    ap.add_argument("--hh", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="standard", choices=["standard", "lean"],
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.h, args.threads = args.h[0], args.threads[0]
        fn = worker_sparse if args.worker == "sparse" else worker_dense
        print(json.dumps(fn(args), default=float))
        return 0
    if args.from_jsonl:
        with open(args.from_jsonl) as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        rows = [r for r in rows if r.get("bench") == "dense"
                and r.get("conditions", {}).get("time", "") >= args.since]
        print_table(rows, sorted({r["h"] for r in rows}), sorted({r["threads"] for r in rows}))
        return 0
    if args.quick:
        args.h, args.threads, args.repeats = [1000, 3000], [2], 1
        args.steps, args.warmup, args.evolution_repeats, args.validate_h = 10, 2, 1, []
    cond = conditions()
    try:  # not imported here: a child's RSS high-water mark would start at ours
        from importlib.metadata import version
        cond["torch"] = version("torch")
    except ImportError:
        cond["torch"] = None
    cond["cpu"] = cpu_model()
    print(f"# {cond}", flush=True)

    # the plan: which dense points run where
    plan = []
    for h in args.h:
        full_est = dense_bytes_estimate(sizes_for(h), "standard")
        reduced = h in args.validate_h
        for impl in args.impls:
            if impl == "sparse":
                plan.append(("sparse", h, "standard", 2))
                continue
            if full_est <= args.dense_max_gib * GIB:
                plan.append(("dense", h, "standard", 2))
            else:
                plan.append(("skip", h, "standard", 2))
                reduced = True
            if reduced:
                if dense_bytes_estimate(sizes_for(h), "lean") <= args.dense_max_gib * GIB:
                    plan.append(("dense", h, "lean", 2))
                else:
                    plan.append(("skip", h, "lean", 2))
                plan += [("dense", h, "lean", 1), ("dense", h, "lean", 0)]

    rows = []
    for rep in range(args.repeats):
        for kind, h, variant, hh in plan:
            for thr in args.threads:
                if kind == "skip":
                    if rep:
                        continue
                    est = dense_bytes_estimate(sizes_for(h, hh), variant)
                    r = _skip(f"estimated {est / GIB:.1f} GiB > --dense-max-gib "
                              f"{args.dense_max_gib:g} (24 GiB machine shared with others); "
                              "not started", est_bytes=est)
                    r.update(bench="dense", impl="dense", h=h, threads=thr, variant=variant,
                             hh=hh, sizes=sizes_for(h, hh), command=" ".join(sys.argv))
                else:
                    r = run_point(kind, h, thr, args, variant=variant, hh=hh, rep=rep)
                r["conditions"] = cond
                rows.append(r)
                append_jsonl(args.out, r)
                tag = kind if kind == "sparse" else f"dense/{variant}/hh={hh}"
                print(f"h={h} thr={thr} rep={rep} {tag}: {_describe(r)}", flush=True)

    # estimates of the full dense model from the reduced points: 2 t(hh=1) - t(hh=0)
    for h in args.h:
        for thr in args.threads:
            sel = {k: [r for r in rows if r["impl"] == "dense" and r["h"] == h
                       and r["threads"] == thr and r.get("variant") == "lean" and r["hh"] == k]
                   for k in (0, 1, 2)}
            t1, t0 = _median_of(sel[1], "step_s_median"), _median_of(sel[0], "step_s_median")
            g1, g0 = _median_of(sel[1], "rss_growth"), _median_of(sel[0], "rss_growth")
            if t1 is None or t0 is None:
                continue
            est = dict(bench="dense", impl="dense", estimate=True, h=h, threads=thr,
                       variant="lean", hh=2, sizes=sizes_for(h),
                       step_s_median=2 * t1 - t0, rss_growth=2 * g1 - g0,
                       from_hh1=dict(step_s_median=t1, rss_growth=g1, runs=len(sel[1])),
                       from_hh0=dict(step_s_median=t0, rss_growth=g0, runs=len(sel[0])),
                       measured_hh2=_median_of(sel[2], "step_s_median"),
                       conditions=cond, command=" ".join(sys.argv))
            rows.append(est)
            append_jsonl(args.out, est)
            msg = f"h={h} thr={thr} dense/lean full model ESTIMATED: {est['step_s_median']:.3f} s/step"
            if est["measured_hh2"]:
                msg += f" (measured {est['measured_hh2']:.3f})"
            print(msg, flush=True)
    print_table(rows, args.h, args.threads)
    return 0


def _pick(rows, impl, h, thr, variant=None, hh=2):
    return [r for r in rows if r.get("bench") == "dense" and r["impl"] == impl and r["h"] == h
            and r["threads"] == thr and not r.get("estimate") and r.get("hh", 2) == hh
            and (variant is None or r.get("variant") == variant)]


def summarize(rows, hs, threads):
    """Per (h, threads): medians over runs of each run's median (and min) step, RSS growth."""
    out = []
    for h in hs:
        for thr in threads:
            sp = _pick(rows, "sparse", h, thr)
            std, lean = _pick(rows, "dense", h, thr, "standard"), _pick(rows, "dense", h, thr, "lean")
            est = [r for r in rows if r.get("estimate") and r["h"] == h and r["threads"] == thr]
            ok = [r for r in sp if not r.get("skipped")]
            if not ok:
                continue
            d = dict(h=h, threads=thr, nnz=ok[0]["nnz"], runs=len(ok),
                     sparse=_median_of(sp, "step_s_median"), sparse_min=_median_of(sp, "step_s_min"),
                     sparse_growth=_median_of(sp, "rss_growth"), sparse_peak=_median_of(sp, "peak_rss"),
                     sparse_bpc=_median_of(sp, "bytes_per_conn"),
                     evolution=_median_of([r for r in ok if r.get("evolution_s_median")],
                                          "evolution_s_median"),
                     std=_median_of(std, "step_s_median"), std_min=_median_of(std, "step_s_min"),
                     std_growth=_median_of(std, "rss_growth"), std_peak=_median_of(std, "peak_rss"),
                     std_runs=sum(not r.get("skipped") for r in std),
                     std_skip=next((r["reason"] for r in std if r.get("skipped")), None),
                     lean=_median_of(lean, "step_s_median"), lean_min=_median_of(lean, "step_s_min"),
                     lean_growth=_median_of(lean, "rss_growth"), lean_est=False)
            red = {hh: [r for r in _pick(rows, "dense", h, thr, "lean", hh) if not r.get("skipped")]
                   for hh in (0, 1)}
            if d["lean"] is None and red[0] and red[1]:
                # the documented estimate 2 t(hh=1) - t(hh=0), from the medians over all runs
                d.update(lean=2 * _median_of(red[1], "step_s_median")
                         - _median_of(red[0], "step_s_median"),
                         lean_growth=2 * _median_of(red[1], "rss_growth")
                         - _median_of(red[0], "rss_growth"), lean_est=True)
            elif d["lean"] is None and est:
                d.update(lean=est[-1]["step_s_median"], lean_growth=est[-1]["rss_growth"],
                         lean_est=True)
            out.append(d)
    return out


def print_table(rows, hs, threads):
    """Markdown table: medians over runs of each run's median step; ratios dense / sparse."""
    print("\n| h | thr | connections | sparse s/step (min) | dense standard s/step (min) | ratio "
          "| dense lean s/step | ratio | sparse RSS growth | dense RSS growth (std / lean) "
          "| memory ratio (std / lean) | sparse B/conn | evolution s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for d in summarize(rows, hs, threads):
        e = " (est.)" if d["lean_est"] else ""
        ts = d["sparse"]
        cells = [f"{d['h']:,}", str(d["threads"]), f"{d['nnz']:,}",
                 f"{ts:.4f} ({d['sparse_min']:.4f})",
                 f"{d['std']:.3f} ({d['std_min']:.3f})" if d["std"] else "did not fit",
                 f"{d['std'] / ts:.1f}x" if d["std"] else "-",
                 f"{d['lean']:.3f}{e}" if d["lean"] else "-",
                 f"{d['lean'] / ts:.1f}x{e}" if d["lean"] else "-",
                 _fmt_mib(d["sparse_growth"]),
                 " / ".join(_fmt_mib(g) + (e if k == "lean" else "") if g else "-"
                            for k, g in (("std", d["std_growth"]), ("lean", d["lean_growth"]))),
                 " / ".join(f"{g / d['sparse_growth']:.0f}x" + (e if k == "lean" else "")
                            if g else "-"
                            for k, g in (("std", d["std_growth"]), ("lean", d["lean_growth"]))),
                 f"{d['sparse_bpc']:.1f}",
                 f"{d['evolution']:.3f}" if d["evolution"] else "-"]
        print("| " + " | ".join(cells) + " |")

if __name__ == "__main__":
    sys.exit(main())
