"""Data augmentation of image batches: random shifts and horizontal flips, drawn from a given stream."""

import numpy as np

from .._validation import check_param

__all__ = ["IMAGE_SHAPES", "image_shape", "augment"]

#: (channels, height, width) of the image data sets, flattened channel-major, row-major.
IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28),
                "cifar10": (3, 32, 32)}


def image_shape(dataset):
    """The image shape of a named data set.

    Parameters
    ----------
    dataset : str
        Data set name.

    Returns
    -------
    tuple of int
        ``(channels, height, width)``.

    Raises
    ------
    ValueError
        If the data set is not one of the image sets of :data:`IMAGE_SHAPES`.
    """
    if dataset not in IMAGE_SHAPES:
        raise ValueError(f"augmentation needs image data: dataset {dataset!r} has no known image "
                         f"shape. Use one of {', '.join(IMAGE_SHAPES)}, or turn augmentation off "
                         "(--augment-shift 0 --no-augment-flip).")
    return IMAGE_SHAPES[dataset]


def augment(xt, shape, rng, *, shift=0, flip=False):
    """A randomly shifted and flipped copy of a feature-major batch of images.

    Parameters
    ----------
    xt : ndarray of shape (n_features, B)
        The batch, feature-major; its first ``C * H * W`` features are the image (further
        features, such as zero padding, are copied unchanged).
    shape : tuple of int
        ``(C, H, W)`` of the image, stored channel-major then row-major.
    rng : numpy.random.Generator or numpy.random.RandomState
        Randomness: per sample a vertical then a horizontal shift, then the flips.
    shift : int, default=0
        Largest shift in pixels; each sample moves by integers drawn uniformly from
        ``[-shift, shift]`` in each direction, the border pixels repeated into the gap
        (Keras's ``fill_mode="nearest"``).
    flip : bool, default=False
        Mirror each sample left-right with probability 1/2 (before the shift).

    Returns
    -------
    ndarray of shape (n_features, B)
        A new array; ``xt`` is not modified.

    Notes
    -----
    Draws, in this order: ``B`` vertical shifts, ``B`` horizontal shifts (only when
    ``shift > 0``), ``B`` uniform numbers for the flips (only when ``flip``). The result
    depends only on ``xt`` and the generator's state, never on the thread count. One
    gather, O(n_features * B).
    """
    shift = check_param("shift", shift, "int", low=0, owner="augment")
    C, H, W = shape
    n = C * H * W
    if xt.ndim != 2 or xt.shape[0] < n:
        raise ValueError(f"augment: xt must have shape (>= {n}, B) for {C}x{H}x{W} images. "
                         f"Got {xt.shape}.")
    B = xt.shape[1]
    legacy = isinstance(rng, np.random.RandomState)
    draw = rng.randint if legacy else rng.integers
    if shift:
        dy, dx = draw(-shift, shift + 1, B), draw(-shift, shift + 1, B)
    else:
        dy = dx = np.zeros(B, dtype=np.int64)
    fl = (rng.random_sample(B) if legacy else rng.random(B)) < 0.5 if flip else np.zeros(B, bool)
    rows = np.clip(np.arange(H)[:, None] - dy[None, :], 0, H - 1)  # out[h] = in[h - dy]
    src = np.clip(np.arange(W)[:, None] - dx[None, :], 0, W - 1)
    cols = np.where(fl[None, :], W - 1 - src, src)  # flipped first, then shifted
    out = xt.copy()
    img = xt[:n].reshape(C, H, W, B)
    out[:n] = img[:, rows[:, None, :], cols[None, :, :], np.arange(B)[None, None, :]].reshape(n, B)
    return out
