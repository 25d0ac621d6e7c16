"""Where training time goes: per-phase and per-layer wall-clock accounting (``--profile``)."""

import contextlib
import time

import numpy as np

from .. import evolution

__all__ = ["Profiler"]


class Profiler:
    """Time a Trainer's epochs by phase and by layer, by wrapping its callables.

    Wraps, for the profiled trainer only: each layer's ``forward`` and ``backward``
    (sparse kernels + bias), each activation's ``forward``/``backward``, the optimizer's
    ``step``, the trainer's per-layer topology changes (:func:`sparsemlp.evolution.apply`,
    optimizer remap included), evaluation and checkpointing
    (the epoch checkpoints and ``final/``).
    Everything else inside the training loop (batch gathering, loss, output delta, Python
    overhead) is reported as ``train: other``. The wrappers cost about a microsecond per call.

    Parameters
    ----------
    trainer : Trainer
        The trainer to instrument (modified in place until :meth:`detach`).

    Examples
    --------
    >>> import numpy as np, sparsemlp
    >>> from sparsemlp.data import load
    >>> ds = load("digits", rng=np.random.default_rng(0))
    >>> cfg = sparsemlp.TrainConfig(hidden=(50,), epochs=1, checkpoint_every=0)
    >>> tr = sparsemlp.Trainer.from_config(cfg, ds.n_features, ds.n_classes, verbose=False)
    >>> prof = Profiler(tr)
    >>> _ = tr.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
    >>> "train: other" in prof.report()
    True
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self.seconds = {}
        self.calls = {}
        self._undo = []
        self._epochs0 = trainer.epoch
        for i, layer in enumerate(trainer.model.layers):
            self._wrap(layer, "forward", f"train: layer {i} forward", train_only=True)
            self._wrap(layer, "backward", f"train: layer {i} backward", train_only=True)
        for i, act in enumerate(trainer.model.activations):
            self._wrap(act, "forward", f"train: activations (layer {i})", train_only=True)
            self._wrap(act, "backward", f"train: activations (layer {i})", train_only=True)
        self._wrap(trainer.optimizer, "step", "train: optimizer update", train_only=True)
        self._wrap(trainer, "evaluate", "evaluation")
        self._wrap(trainer, "_save_epoch_checkpoint", "checkpoint")
        self._wrap(trainer, "save", "checkpoint")  # final/ at the end of fit
        self._wrap(trainer, "_evolve", "evolution: total")
        # every topology change of a layer (and its optimizer remap) goes through
        # evolution.apply, which the trainer looks up at each call
        orig_apply = evolution.apply

        def apply(layer, rule, **kw):
            i = next((k for k, la in enumerate(trainer.model.layers) if la is layer), "?")
            with self._time(f"evolution: layer {i}"):
                return orig_apply(layer, rule, **kw)

        evolution.apply = apply
        self._undo.append(lambda: setattr(evolution, "apply", orig_apply))

    @contextlib.contextmanager
    def _time(self, key):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0
            self.calls[key] = self.calls.get(key, 0) + 1

    def _wrap(self, obj, name, key, train_only=False):
        orig = getattr(obj, name)
        had = name in vars(obj)
        tr = self.trainer

        def wrapped(*a, **kw):
            if train_only and tr.timer._name != "train":
                return orig(*a, **kw)
            with self._time(key):
                return orig(*a, **kw)

        setattr(obj, name, wrapped)
        self._undo.append(lambda: setattr(obj, name, orig) if had else delattr(obj, name))

    def detach(self):
        """Remove the wrappers."""
        for undo in reversed(self._undo):
            undo()
        self._undo = []

    def report(self):
        """A table of seconds per epoch by phase and layer, with shares of the epoch.

        Returns
        -------
        str
            The table (one line per entry, largest first within each phase).
        """
        recs = self.trainer.history.records[self._epochs0:]
        n = max(1, len(recs))
        train = sum(r["seconds_train"] for r in recs)
        evo = sum(r["seconds_evolution"] for r in recs)
        total = train + evo + sum(r["seconds_eval"] for r in recs)
        total += self.seconds.get("checkpoint", 0.0)
        inner = sum(v for k, v in self.seconds.items() if k.startswith("train: "))
        rows = dict(self.seconds)
        rows["train: other (batching, loss, delta, Python)"] = max(0.0, train - inner)
        rows.pop("evolution: total", None)
        layer_evo = sum(v for k, v in rows.items() if k.startswith("evolution: layer"))
        rows["evolution: other (index refresh, gradient buffers)"] = max(0.0, evo - layer_evo)
        lines = [f"profile over {len(recs)} epoch(s): {total / n:.4f} s/epoch",
                 f"{'phase':<52} {'s/epoch':>10} {'share':>7} {'calls/epoch':>12}"]
        for phase in ("train", "evolution", "evaluation", "checkpoint"):
            items = sorted(((k, v) for k, v in rows.items() if k.startswith(phase)),
                           key=lambda kv: -kv[1])
            for k, v in items:
                calls = self.calls.get(k)
                # rarer than once per epoch (checkpoints every few epochs) stays visible
                c = "" if not calls else f"{calls / n:.0f}" if calls >= n else f"{calls / n:.2g}"
                lines.append(f"{k:<52} {v / n:>10.4f} {v / max(total, 1e-12):>7.1%} {c:>12}")
        return "\n".join(lines)

    def as_dict(self):
        """Seconds per epoch by entry (for JSON output).

        Returns
        -------
        dict
            Entry name to seconds per epoch.
        """
        n = max(1, len(self.trainer.history.records) - self._epochs0)
        return {k: float(np.float64(v) / n) for k, v in self.seconds.items()}
