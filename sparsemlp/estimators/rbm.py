"""SparseBernoulliRBM: a scikit-learn transformer over RBMTrainer and SparseRBM."""

import warnings
import zlib

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_param
from ..nn.batching import batch_t
from ..rbm import SparseRBM
from ..rbm.metrics import pseudo_log_likelihood
from ..training import Callback, TrainConfig
from ..training.rbm import RBMTrainer
from .mlp import _seed

__all__ = ["SparseBernoulliRBM"]

OUT_OF_RANGE = ("warn", "ignore", "clip", "raise")
# Values per dense temporary of transform / score_samples / gibbs (8 MiB in float64): sparse
# input is densified this many values at a time, never as a whole.
_CHUNK_VALUES = 1 << 20


class _OneStream:
    """The ``Streams`` interface over one Generator, consumed in call order.

    scikit-learn's ``random_state``: one generator draws the topology, the persistent
    chains, every epoch's shuffle and Gibbs samples and the regrowth, in the order the
    epochs need them (so a fit is a function of ``random_state`` alone).
    """

    legacy = False

    def __init__(self, rng):
        self.rng = rng

    def get(self, name, *keys):
        return self.rng


class _PrintEpochs(Callback):
    """``verbose``: one line per epoch on standard output."""

    def on_epoch_end(self, trainer, record):
        print(f"epoch {record['epoch']}: recon {record['train_recon']:.5f} nnz "
              f"{record['nnz'][0]}")


def _rows(X, sl, dtype):
    """Rows ``sl`` of dense or sparse ``X`` as a dense sample-major array of ``dtype``."""
    rows = X[sl]
    return np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=dtype)


class SparseBernoulliRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Bernoulli RBM with truly sparse (CSR) weights trained by CD-k and SET.

    A drop-in for :class:`sklearn.neural_network.BernoulliRBM` (same parameters, methods
    ``fit``, ``transform``, ``score_samples``, ``gibbs``, ``get_feature_names_out``, dense or
    SciPy sparse input, float32 or float64) whose weights are an Erdős–Rényi CSR array
    rewired after every epoch (the SET-RBM of Mocanu et al. 2018).

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    epsilon : float, default=10.0
        Erdős–Rényi sparsity: density ``epsilon*(n_visible+n_hidden)/(n_visible*n_hidden)``
        (a layer too small for it is fully connected).
    zeta : float, default=0.3
        Fraction of connections rewired per epoch, in [0, 1).
    topology : {"set", "static"}, default="set"
        Evolve the topology, or keep the initial one.
    learning_rate : float, default=0.1
        CD learning rate (of the batch-mean gradient, as BernoulliRBM).
    batch_size : int, default=10
        Mini-batch size (clipped to the number of samples).
    n_iter : int, default=10
        Epochs (0 leaves the initial model, as BernoulliRBM).
    weight_decay : float, default=2e-7
        Per-step weight decay (the original SET-RBM rule).
    momentum : float, default=0.0
        SGD momentum in [0, 1) (the original has none).
    k : int, default=1
        Gibbs steps per update (CD-k).
    persistent : bool, default=False
        Persistent contrastive divergence (Tieleman 2008) with ``batch_size`` chains;
        BernoulliRBM always trains this way (PCD-1).
    out_of_range : {"warn", "ignore", "clip", "raise"}, default="warn"
        What to do with input values outside [0, 1], which Bernoulli visible units do not
        model. ``"warn"``: use them as given, as BernoulliRBM does, with a warning that
        names the range; ``"ignore"``: the same, silently (BernoulliRBM's behaviour);
        ``"clip"``: clip them to [0, 1]; ``"raise"``: a ValueError.
    random_state : int, RandomState, Generator or None, default=None
        Seed of the topology, sampling and evolution.
    backend : {"auto", "cython", "numba", "numpy"}, default="auto"
        Kernel backend.
    verbose : bool or int, default=False
        Print one line per epoch.

    Attributes
    ----------
    rbm_ : SparseRBM
        The fitted model (weights in the dtype of the training data).
    components_ : scipy.sparse.csc_array of shape (n_components, n_features)
        Weights in BernoulliRBM's layout: ``rbm_.W.T``, a zero-copy CSC view of the CSR
        weights.
    intercept_hidden_ : ndarray of shape (n_components,)
        Hidden biases.
    intercept_visible_ : ndarray of shape (n_features,)
        Visible biases.
    history_ : list of dict
        Per-epoch reconstruction errors, nnz and timings.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in ``fit`` (only when they are all strings).

    See Also
    --------
    sklearn.neural_network.BernoulliRBM : The dense estimator this replaces.
    sparsemlp.SparseRBM : The model, with Gaussian visible units and likelihood tools.

    Notes
    -----
    Differences from BernoulliRBM: CD-k by default (``persistent=True`` for PCD); each
    epoch visits the samples in a new random order and drops the last incomplete batch;
    ``components_`` is sparse; ``score_samples`` flips one unit chosen from a hash of each
    sample (deterministic, so a sample's score does not depend on the call or its position);
    ``gibbs`` returns 0/1 floats instead of booleans. There is no ``partial_fit``: SET
    rewires the topology once per epoch over the whole data set. Memory is O(nnz) for the
    model and O(batch * (n_features + n_components)) for any temporary, also for sparse
    input, which is never densified as a whole.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018);
    Tieleman, "Training restricted Boltzmann machines using approximations to the
    likelihood gradient", ICML 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp.estimators import SparseBernoulliRBM
    >>> X = (np.random.default_rng(0).random((100, 20)) > 0.5).astype(float)
    >>> rbm = SparseBernoulliRBM(n_components=8, epsilon=3, n_iter=2, random_state=0).fit(X)
    >>> rbm.transform(X).shape
    (100, 8)
    """

    def __init__(self, n_components=256, *, epsilon=10.0, zeta=0.3, topology="set",
                 learning_rate=0.1, batch_size=10, n_iter=10, weight_decay=2e-7, momentum=0.0,
                 k=1, persistent=False, out_of_range="warn", random_state=None, backend="auto",
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
        self.out_of_range = out_of_range
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose

    def _check_params(self):
        own = type(self).__name__
        p = {
            "n_components": check_param("n_components", self.n_components, "int", low=1,
                                        owner=own),
            "epsilon": check_param("epsilon", self.epsilon, "float", low=0, low_open=True,
                                   owner=own),
            "zeta": check_param("zeta", self.zeta, "float", low=0, high=1, high_open=True,
                                owner=own),
            "topology": check_param("topology", self.topology, "str",
                                    options=("set", "static"), owner=own),
            "lr": check_param("learning_rate", self.learning_rate, "float", low=0,
                              low_open=True, owner=own),
            "batch_size": check_param("batch_size", self.batch_size, "int", low=1, owner=own),
            "epochs": check_param("n_iter", self.n_iter, "int", low=0, owner=own),
            "weight_decay": check_param("weight_decay", self.weight_decay, "float", low=0,
                                        owner=own),
            "momentum": check_param("momentum", self.momentum, "float", low=0, high=1,
                                    high_open=True, owner=own),
            "k": check_param("k", self.k, "int", low=1, owner=own),
            "persistent": check_param("persistent", self.persistent, "bool", owner=own),
        }
        check_param("out_of_range", self.out_of_range, "str", options=OUT_OF_RANGE, owner=own)
        check_param("backend", self.backend, "str",
                    options=("auto", "cython", "numba", "numpy"), owner=own)
        return p

    def _check_range(self, X, name):
        """Apply ``out_of_range`` to validated ``X`` (dense or CSR); returns the data to use."""
        values = X.data if sp.issparse(X) else X
        if self.out_of_range == "ignore" or not values.size:
            return X
        lo, hi = values.min(), values.max()
        if lo >= 0 and hi <= 1:
            return X
        what = (f"{name} has values in [{lo:.4g}, {hi:.4g}], outside the [0, 1] that "
                "Bernoulli visible units model")
        if self.out_of_range == "raise":
            raise ValueError(f"{what}. Rescale the data (e.g. sklearn.preprocessing."
                             "MinMaxScaler) or set out_of_range='clip'.")
        if self.out_of_range == "clip":
            X = X.copy()
            values = X.data if sp.issparse(X) else X
            np.clip(values, 0.0, 1.0, out=values)
            return X
        warnings.warn(f"SparseBernoulliRBM: {what}; they are used as given, as BernoulliRBM "
                      "does. Rescale the data (e.g. MinMaxScaler), or set out_of_range='clip' "
                      "(or 'ignore' to silence this).", UserWarning, stacklevel=3)
        return X

    def fit(self, X, y=None):
        """Train on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in [0, 1] (see ``out_of_range``); float32 data gives float32 weights.
        y : None
            Ignored.

        Returns
        -------
        self : SparseBernoulliRBM
            The fitted estimator.
        """
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32))
        p = self._check_params()
        X = self._check_range(X, "X")
        rng = np.random.default_rng(_seed(self.random_state))
        self.rbm_ = SparseRBM.erdos_renyi(X.shape[1], p["n_components"], epsilon=p["epsilon"],
                                          law="bernoulli", rng=rng, dtype=X.dtype,
                                          kernels=self.backend)
        self._n_features_out = p["n_components"]
        self._rng_ = rng
        self.history_ = []
        if p["epochs"] == 0:
            return self
        cfg = TrainConfig(
            model="rbm", hidden=(p["n_components"],), epsilon=p["epsilon"], zeta=(p["zeta"],),
            topology=p["topology"], epochs=p["epochs"], batch_size=min(p["batch_size"], X.shape[0]),
            drop_last=True, lr=p["lr"], lr_schedule="constant", momentum=p["momentum"],
            weight_decay=p["weight_decay"], decay="original", cd_k=p["k"],
            persistent=p["persistent"], init="normal", normal_std=0.05, er_law="bernoulli",
            dtype=X.dtype.name, normalize="none", pll="none", ais_every=0, checkpoint_every=0,
            backend=self.backend).resolve()
        trainer = RBMTrainer(self.rbm_, cfg, streams=_OneStream(rng), verbose=False,
                             callbacks=[_PrintEpochs()] if self.verbose else ())
        if p["persistent"]:  # the chains come from the one generator too
            trainer.chains = self.rbm_.init_chains(X, cfg.batch_size, rng)
        trainer.fit(X, check_range=False)
        # the trainer's optimizer state and buffers are not kept: the estimator holds the model
        self.history_ = [
            {"epoch": r["epoch"], "train_recon": r["train_recon"],
             "train_recon_original": r["train_recon_original"], "test_recon": None,
             "nnz": r["nnz"][0], "seconds_train": r["seconds_train"],
             "seconds_eval": r["seconds_eval"], "seconds_evolution": r["seconds_evolution"]}
            for r in trainer.history.records]
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
        ndarray of shape (n_components,)
            The fitted values (by reference).
        """
        return self.rbm_.b_hidden

    @property
    def intercept_visible_(self):
        """Visible biases.

        Returns
        -------
        ndarray of shape (n_features,)
            The fitted values (by reference).
        """
        return self.rbm_.b_visible

    def _prep(self, X):
        check_is_fitted(self, "rbm_")
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32),
                          reset=False)
        return self._check_range(X, "X")

    def _chunk(self):
        return max(1, _CHUNK_VALUES // max(self.rbm_.n_visible, self.rbm_.n_hidden))

    def transform(self, X):
        """Hidden-unit probabilities ``p(h=1 | v)``: the learned features.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in [0, 1].

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Features, in the wider of the dtypes of ``X`` and the weights.
        """
        X = self._prep(X)
        n, step, m = X.shape[0], self._chunk(), self.rbm_
        out = np.empty((n, m.n_hidden), np.result_type(X.dtype, m.dtype))
        for s in range(0, n, step):
            out[s:s + step] = m.hidden_probs(batch_t(X, slice(s, s + step), m.dtype)).T
        return out

    def score_samples(self, X):
        """Pseudo-log-likelihood per sample, estimated from one flipped unit (as BernoulliRBM).

        The unit is chosen from a hash of the sample's values, so a sample's score does not
        depend on its position in ``X`` or on earlier calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in [0, 1] (binary for a true pseudo-likelihood).

        Returns
        -------
        ndarray of shape (n_samples,)
            Stochastic pseudo-log-likelihoods.
        """
        X = self._prep(X)
        n, step = X.shape[0], self._chunk()
        out = np.empty(n)
        for s in range(0, n, step):
            rows = _rows(X, slice(s, s + step), np.float64)
            units = np.array([zlib.crc32(r.tobytes()) for r in rows],
                             dtype=np.int64) % max(1, X.shape[1])
            out[s:s + rows.shape[0]] = pseudo_log_likelihood(self.rbm_, rows, units=units)
        return out

    def gibbs(self, v):
        """One Gibbs step from ``v``: sample h given v, then binary v given h.

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible states in [0, 1].

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            New binary visible states (0/1 in the dtype of the weights).
        """
        v = self._prep(v)
        n, step, m, rng = v.shape[0], self._chunk(), self.rbm_, self._rng_
        out = np.empty((n, m.n_visible), m.dtype)
        for s in range(0, n, step):
            h = m.sample(m.hidden_probs(batch_t(v, slice(s, s + step), m.dtype)), rng)
            out[s:s + step] = m.sample(m.visible_probs(h), rng).T
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
