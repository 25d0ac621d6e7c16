"""What a pruning did: per-layer connections, reconstruction error and seconds; a progress bar."""

import dataclasses
import sys

__all__ = ["LayerReport", "PruneReport", "progress"]


@dataclasses.dataclass
class LayerReport:
    """One layer of a :class:`PruneReport`.

    Attributes
    ----------
    layer : int
        Layer index.
    shape : tuple of int
        ``(n_in, n_out)``.
    nnz_before, nnz_after : int
        Connections before and after.
    rel_error : float or None
        ``‖Z' − Z‖ / ‖Z‖`` of the layer's pre-activations on its calibration inputs (as the
        pruned model computes them), ``Z`` from the layer before pruning and ``Z'`` after;
        None without calibration inputs.
    seconds : float
        Time spent on the layer.
    """

    layer: int
    shape: tuple
    nnz_before: int
    nnz_after: int
    rel_error: float = None
    seconds: float = 0.0

    @property
    def density_before(self):
        """Connections before over ``n_in * n_out``.

        Returns
        -------
        float
            Density.
        """
        return self.nnz_before / max(1, self.shape[0] * self.shape[1])

    @property
    def density_after(self):
        """Connections after over ``n_in * n_out``.

        Returns
        -------
        float
            Density.
        """
        return self.nnz_after / max(1, self.shape[0] * self.shape[1])


@dataclasses.dataclass
class PruneReport:
    """What :func:`sparsemlp.prune.prune` did.

    Attributes
    ----------
    criterion, compensate, scope : str
        The settings.
    steps : int
        Rounds.
    calib_samples : int
        Calibration points (0 when none were used).
    calib_noise : bool
        The calibration points were uniform noise.
    layers : list of LayerReport
        One per layer of the model (layers not pruned keep their nnz).
    output_rel_error : float or None
        ``‖f'(x) − f(x)‖ / ‖f(x)‖`` of the logits on the calibration points.
    seconds : float
        Total time.
    """

    criterion: str
    compensate: str
    scope: str
    steps: int
    calib_samples: int
    calib_noise: bool
    layers: list
    output_rel_error: float = None
    seconds: float = 0.0

    @property
    def nnz_before(self):
        """Total connections before.

        Returns
        -------
        int
            Connections.
        """
        return sum(la.nnz_before for la in self.layers)

    @property
    def nnz_after(self):
        """Total connections after.

        Returns
        -------
        int
            Connections.
        """
        return sum(la.nnz_after for la in self.layers)

    def to_dict(self):
        """Plain values for JSON (layers as dicts, densities included).

        Returns
        -------
        dict
            The report.
        """
        d = dataclasses.asdict(self)
        for row, la in zip(d["layers"], self.layers):
            row["shape"] = list(la.shape)
            row["density_before"] = la.density_before
            row["density_after"] = la.density_after
        d["nnz_before"], d["nnz_after"] = self.nnz_before, self.nnz_after
        return d

    def __str__(self):
        def err(v):
            return "-" if v is None else f"{v:.3g}"

        calib = ("none" if not self.calib_samples else
                 f"{self.calib_samples} {'noise points' if self.calib_noise else 'samples'}")
        lines = [f"pruning: criterion {self.criterion}, compensation {self.compensate}, scope "
                 f"{self.scope}, {self.steps} step(s), calibration {calib}",
                 f"{'layer':>5} {'shape':>13} {'nnz before':>11} {'nnz after':>10} "
                 f"{'density':>8} {'rel. error':>10} {'seconds':>8}"]
        for la in self.layers:
            shape = f"{la.shape[0]}x{la.shape[1]}"
            lines.append(f"{la.layer:>5} {shape:>13} {la.nnz_before:>11} {la.nnz_after:>10} "
                         f"{la.density_after:>8.4f} {err(la.rel_error):>10} {la.seconds:>8.2f}")
        lines.append(f"total: {self.nnz_before} -> {self.nnz_after} connections, output "
                     f"relative error {err(self.output_rel_error)}, {self.seconds:.2f} s")
        return "\n".join(lines)


def progress(total, desc, enabled):
    """A tqdm bar on a terminal when enabled, else an object whose methods do nothing.

    Parameters
    ----------
    total : int
        Steps.
    desc : str
        Label.
    enabled : bool
        Show the bar (only when stderr is a terminal).

    Returns
    -------
    object
        With ``update(n)`` and ``close()``.
    """
    if enabled and sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, unit="neuron", dynamic_ncols=True)
    return _NoBar()


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass
