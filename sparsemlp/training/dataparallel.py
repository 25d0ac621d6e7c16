"""Data-parallel steps: each rank's share of a global batch, column-sharded draws, rank agreement."""


from .checkpoint import topology_digest
from .config import ConfigError

__all__ = ["shard_bounds", "check_shardable", "check_same_state", "RankMismatchError", "TAIL"]

#: Values a rank appends to its flat gradient buffer, summed by the same ``Allreduce``: the
#: batch's loss (or reconstruction error) summed over the rank's samples, and 1.0 when the
#: rank received a stop signal (so that every rank stops after the same step).
TAIL = 2


class RankMismatchError(RuntimeError):
    """The ranks of a data-parallel run no longer hold the same model (or run)."""


def shard_bounds(n, size, rank):
    """The rank's contiguous share ``[lo, hi)`` of ``n`` items (as ``numpy.array_split``).

    The first ``n % size`` ranks get one item more; concatenating the shares of ranks
    ``0..size-1`` gives ``0..n-1`` in order.

    Parameters
    ----------
    n : int
        Number of items (samples of a global batch, or of a test set).
    size : int
        Number of ranks.
    rank : int
        This rank, ``0 <= rank < size``.

    Returns
    -------
    lo, hi : int
        Bounds of the share.
    """
    q, r = divmod(int(n), int(size))
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def check_shardable(cfg, n_samples, size, model_name="mlp"):
    """Refuse settings a data-parallel run over ``size`` ranks cannot reproduce.

    Parameters
    ----------
    cfg : TrainConfig
        Resolved configuration.
    n_samples : int
        Training samples.
    size : int
        Number of ranks.
    model_name : {"mlp", "rbm"}, default="mlp"
        Which trainer asks.

    Raises
    ------
    ConfigError
        In reference mode (one legacy stream in the original single-process order), for
        PCD (``persistent``), Gaussian visible units and when a batch would leave a rank without samples.
    """
    if size == 1:
        return
    if cfg.legacy_rng:
        raise ConfigError(f"reference mode replays the original single-process program on one "
                          f"random stream; it cannot be split over {size} ranks. Drop "
                          "--mode reference (or --legacy-rng), or run it on one rank.")
    if model_name == "rbm" and cfg.persistent:
        raise ConfigError(f"--persistent (PCD) keeps batch-size chains that {size} ranks would "
                          "have to share; data-parallel PCD is not supported. Run PCD on one "
                          "rank or drop --persistent.")
    if model_name == "rbm" and cfg.visible_units == "gaussian":
        raise ConfigError(f"Gaussian visible units draw normal samples, which {size} ranks "
                          "cannot split yet (only uniform draws are sharded). Use binary "
                          "visible units, or run on one rank.")
    B = cfg.batch_size
    smallest = min(B, n_samples)
    last = n_samples % B
    if last and not cfg.drop_last and n_samples > B:
        smallest = min(smallest, last)
    if smallest < size:
        raise ConfigError(f"{size} ranks need at least {size} samples in every batch, but a batch "
                          f"of this run has {smallest} (batch size {B}, {n_samples} training "
                          "samples). Use fewer ranks, a larger --batch-size, or --drop-last.")


def check_same_state(comm, layers, when, extra=()):
    """Raise unless every rank holds the same topology (digest of each layer's pattern).

    A short SHA-1 per layer of ``(indptr, indices)`` is gathered from every rank; any
    difference stops the run on every rank with the same message (never trains on).

    Parameters
    ----------
    comm : communicator
        ``allgather_obj`` is used.
    layers : sequence of SparseLinear
        The model's sparse layers.
    when : str
        Where in the run the check is (for the message), e.g. ``"after the evolution of
        epoch 3"``.
    extra : tuple, default=()
        More values every rank must agree on (epoch, step...), compared the same way.

    Returns
    -------
    list of str
        The digests (the same on every rank).

    Raises
    ------
    RankMismatchError
        If two ranks differ.
    """
    mine = ([topology_digest(layer.W) for layer in layers], tuple(extra))
    every = comm.allgather_obj(mine)
    for r, (dig, ext) in enumerate(every):
        if ext != every[0][1]:
            raise RankMismatchError(
                f"{when}, rank {r} is at {ext} but rank 0 at {every[0][1]}: the ranks do not "
                "run the same training. Start every rank with the same flags and checkpoint.")
        bad = [i for i, (a, b) in enumerate(zip(dig, every[0][0])) if a != b]
        if bad:
            i = bad[0]
            raise RankMismatchError(
                f"{when}, layer {i}'s topology on rank {r} (digest {dig[i][:12]}) differs from "
                f"rank 0's ({every[0][0][i][:12]}): the ranks evolved differently (their "
                "weights or random streams differ). Training stops rather than go on with "
                "different models; check that every rank runs the same sparsemlp, backend, "
                "seed and data.")
    return mine[0]
