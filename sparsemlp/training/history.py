"""Per-epoch records, the metrics.jsonl writer, phase timers, peak RSS and the progress bar."""

import json
import logging
import math
import os
import resource
import sys
import time

__all__ = ["History", "PhaseTimer", "peak_rss_mb", "progress"]

logger = logging.getLogger(__name__)


def peak_rss_mb():
    """Peak resident set size of this process in MiB (``ru_maxrss``).

    Returns
    -------
    float
        Peak RSS in MiB.
    """
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


class PhaseTimer:
    """Accumulates wall seconds per named phase: ``with timer("train"): ...``."""

    def __init__(self):
        self.seconds = {}
        self._name = None

    def __call__(self, name):
        self._name = name
        return self

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds[self._name] = self.seconds.get(self._name, 0.0) + time.perf_counter() - self._t0

    def pop(self, name):
        """Seconds accumulated for ``name`` since the last pop (0 if none).

        Parameters
        ----------
        name : str
            Phase name.

        Returns
        -------
        float
            Seconds.
        """
        return self.seconds.pop(name, 0.0)


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class History:
    """Ordered list of per-epoch metric dicts, optionally mirrored to ``metrics.jsonl``.

    Parameters
    ----------
    path : str or path-like, optional
        JSON-lines file appended to after every epoch.
    """

    def __init__(self, path=None):
        self.records = []
        self.path = path

    def append(self, record):
        """Add one epoch's record and append it to the file.

        Parameters
        ----------
        record : dict
            JSON-serialisable metrics.
        """
        record = {k: _clean(v) for k, v in record.items()}
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                os.fsync(fh.fileno())

    def truncate_file(self, n_epochs):
        """Rewrite the file keeping only records with ``epoch <= n_epochs`` (for resume).

        Parameters
        ----------
        n_epochs : int
            Number of completed epochs to keep.
        """
        if self.path is None or not os.path.exists(self.path):
            return
        keep = []
        with open(self.path) as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    break  # a torn last line from a crash
                if rec.get("epoch", 0) <= n_epochs:
                    keep.append(rec)
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "w") as fh:
            for rec in keep:
                fh.write(json.dumps(rec) + "\n")
        os.replace(tmp, self.path)
        self.records = keep

    def column(self, key):
        """Values of one metric over epochs.

        Parameters
        ----------
        key : str
            Metric name.

        Returns
        -------
        list
            One value per epoch.
        """
        return [r.get(key) for r in self.records]

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]


def progress(total, desc, enabled):
    """A tqdm bar on a terminal when enabled, else a no-op object with the same methods.

    Parameters
    ----------
    total : int
        Number of steps.
    desc : str
        Label.
    enabled : bool
        Show the bar (only if stderr is a TTY).

    Returns
    -------
    object
        Has ``update(n)``, ``set_postfix_str(s)`` and ``close()``.
    """
    if enabled and sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, unit="batch", dynamic_ncols=True)
    return _NoBar()


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass
