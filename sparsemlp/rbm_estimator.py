"""SparseBernoulliRBM: a scikit-learn transformer around SparseRBM (scikit-learn imported lazily)."""

import zlib

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .estimators import _seed
from .rbm import SparseRBM
from .rbm_metrics import pseudo_log_likelihood

__all__ = ["SparseBernoulliRBM"]


class SparseBernoulliRBM(TransformerMixin, BaseEstimator):
    """Bernoulli RBM with truly sparse (CSR) weights trained by CD-k and SET.

    A drop-in for :class:`sklearn.neural_network.BernoulliRBM` whose weights are an
    Erdős–Rényi CSR array rewired after every epoch (the SET-RBM of Mocanu et al. 2018).

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    epsilon : float, default=10.0
        Erdős–Rényi sparsity: density ``epsilon*(n_visible+n_hidden)/(n_visible*n_hidden)``.
    zeta : float, default=0.3
        Fraction of connections rewired per epoch, in [0, 1).
    topology : {"set", "static"}, default="set"
        Evolve the topology, or keep the initial one.
    learning_rate : float, default=0.1
        CD learning rate.
    batch_size : int, default=10
        Mini-batch size (clipped to the number of samples).
    n_iter : int, default=10
        Epochs.
    weight_decay : float, default=2e-7
        Per-step weight decay (the original SET-RBM rule).
    momentum : float, default=0.0
        SGD momentum in [0, 1) (the original has none).
    k : int, default=1
        Gibbs steps per update (CD-k).
    persistent : bool, default=False
        Persistent contrastive divergence (Tieleman 2008) with ``batch_size`` chains.
    clip : bool, default=False
        Inputs must lie in [0, 1] (binary data or probabilities); with ``clip=True`` values
        outside are clipped instead of raising an error.
    random_state : int, RandomState, Generator or None, default=None
        Seed of the topology, sampling and evolution.
    backend : str, default="auto"
        Kernel backend.
    verbose : bool, default=False
        Print one line per epoch.

    Attributes
    ----------
    rbm_ : SparseRBM
        The fitted model.
    components_ : scipy.sparse.csc_array of shape (n_components, n_features)
        Weights in BernoulliRBM's layout: ``rbm_.W.T``, a zero-copy CSC view of the CSR
        weights.
    intercept_hidden_, intercept_visible_ : ndarray
        Biases.
    history_ : list of dict
        Per-epoch reconstruction errors, nnz and timings.
    n_features_in_ : int
        Number of features seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp.rbm_estimator import SparseBernoulliRBM
    >>> X = (np.random.default_rng(0).random((100, 20)) > 0.5).astype(float)
    >>> rbm = SparseBernoulliRBM(n_components=8, epsilon=3, n_iter=2, random_state=0).fit(X)
    >>> rbm.transform(X).shape
    (100, 8)
    """

    def __init__(self, n_components=256, *, epsilon=10.0, zeta=0.3, topology="set",
                 learning_rate=0.1, batch_size=10, n_iter=10, weight_decay=2e-7, momentum=0.0,
                 k=1, persistent=False, clip=False, random_state=None, backend="auto",
                 verbose=False):
        self.n_components = n_components
        self.epsilon = epsilon
        self.zeta = zeta
        self.topology = topology
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.k = k
        self.persistent = persistent
        self.clip = clip
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose

    def _check_range(self, X):
        if self.clip:
            return np.clip(X, 0.0, 1.0)
        if X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError(f"SparseBernoulliRBM needs inputs in [0, 1]; got values in "
                             f"[{X.min():.4g}, {X.max():.4g}]. Rescale them (e.g. MinMaxScaler) "
                             "or pass clip=True.")
        return X

    def _rng(self):
        seed = _seed(self.random_state)
        return np.random.default_rng(seed)

    def fit(self, X, y=None):
        """Train on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data in [0, 1].
        y : None
            Ignored.

        Returns
        -------
        self : SparseBernoulliRBM
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=np.float64)
        X = self._check_range(X)
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be >= 1. Got {self.n_components}.")
        rng = self._rng()
        self.rbm_ = SparseRBM.erdos_renyi(X.shape[1], int(self.n_components), epsilon=self.epsilon,
                                          law="bernoulli", rng=rng, kernels=self.backend)
        cb = (lambda r: print(f"epoch {r['epoch']}: recon {r['train_recon']:.5f} nnz "
                              f"{r['nnz']}")) if self.verbose else None
        self.history_ = self.rbm_.fit(
            X, epochs=self.n_iter, batch_size=min(int(self.batch_size), X.shape[0]),
            lr=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay,
            zeta=self.zeta, k=self.k, persistent=self.persistent, topology=self.topology,
            rng=rng, callback=cb)
        self._rng_ = rng
        return self

    @property
    def components_(self):
        """Weights as (n_components, n_features): ``rbm_.W.T``, a zero-copy CSC view.

        Returns
        -------
        scipy.sparse.csc_array
            The fitted weights (shares ``rbm_.W.data``).
        """
        return self.rbm_.W.T

    @property
    def intercept_hidden_(self):
        """Hidden biases.

        Returns
        -------
        ndarray or scipy.sparse.csr_array
            The fitted values.
        """
        return self.rbm_.b_hidden

    @property
    def intercept_visible_(self):
        """Visible biases.

        Returns
        -------
        ndarray or scipy.sparse.csr_array
            The fitted values.
        """
        return self.rbm_.b_visible

    def _prep(self, X):
        check_is_fitted(self, "rbm_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._check_range(X)

    def transform(self, X):
        """Hidden-unit probabilities ``p(h=1 | v)``: the learned features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data in [0, 1].

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Features.
        """
        X = self._prep(X)
        return self.rbm_.hidden_probs(np.ascontiguousarray(X.T)).T.copy()

    def score_samples(self, X):
        """Pseudo-log-likelihood per sample, estimated from one flipped unit (as BernoulliRBM).

        The unit is chosen from a hash of the sample's values, so a sample's score does not
        depend on its position in ``X`` or on earlier calls.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data in [0, 1].

        Returns
        -------
        ndarray of shape (n_samples,)
            Stochastic pseudo-log-likelihoods.
        """
        X = self._prep(X)
        units = np.array([zlib.crc32(row.tobytes()) for row in np.ascontiguousarray(X)],
                         dtype=np.int64) % max(1, X.shape[1])
        return pseudo_log_likelihood(self.rbm_, X, units=units)

    def gibbs(self, v):
        """One Gibbs step from ``v``: sample h given v, then binary v given h.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features)
            Visible states in [0, 1].

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            New binary visible states.
        """
        v = self._prep(v)
        h = self.rbm_.sample(self.rbm_.hidden_probs(np.ascontiguousarray(v.T)), self._rng_)
        vt = self.rbm_.sample(self.rbm_.visible_probs(h), self._rng_)
        return vt.T.copy()
