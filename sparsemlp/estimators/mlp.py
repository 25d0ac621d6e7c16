"""Scikit-learn estimator wrappers around the Trainer (scikit-learn is imported lazily)."""

import dataclasses

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_param
from ..training.config import ConfigError, TrainConfig
from ..training.mlp import Trainer

__all__ = ["SparseMLPClassifier"]

# TrainConfig fields whose estimator parameter has another name (for error messages).
_PARAM_OF_FIELD = {"hidden": "hidden_layer_sizes", "lr": "learning_rate", "epochs": "max_iter",
                   "threads": "n_threads"}
_ADAM_LR = 1e-3


def _seed(random_state):
    if random_state is None:
        return None
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator. "
                     f"Got {random_state!r}. Pass an int seed for reproducible results.")


def _hidden_sizes(hidden, owner):
    """``hidden_layer_sizes`` as a tuple of positive ints (an int is one layer)."""
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        hidden = (hidden,)
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError(f"The 'hidden_layer_sizes' parameter of {owner} needs at least one "
                         "hidden layer. Got (). Pass e.g. (100,).")
    return tuple(check_param("hidden_layer_sizes", h, "int", low=1, owner=owner)
                 for h in hidden)


class SparseMLPClassifier(ClassifierMixin, BaseEstimator):
    """Truly sparse MLP classifier trained with Sparse Evolutionary Training (SET).

    Weights are CSR arrays throughout; after every epoch a fraction ``zeta`` of the
    connections closest to zero is removed and as many are regrown at random.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Hidden layer widths.
    epsilon : float, default=20.0
        Erdős–Rényi sparsity: layer density ``epsilon*(n_in+n_out)/(n_in*n_out)``.
    zeta : float, default=0.3
        Fraction of connections rewired per epoch, in [0, 1).
    topology : {"set", "static"}, default="set"
        Evolve the topology, or keep the initial one (FixProb baseline).
    mode : {"default", "reference"}, default="default"
        Preset for the parameters left at None (see :class:`~sparsemlp.TrainConfig`):
        softmax and cross-entropy, or the original SET demo's sigmoid outputs and MSE.
    activation : {"relu", "leaky_relu", "all_relu", "sigmoid", "tanh", "srelu"}, optional
        Hidden activation (both modes: ``relu``).
    dropout : float, optional
        Dropout rate of the hidden layers (default mode 0.2, reference mode 0.0).
    batch_size : int, optional
        Mini-batch size (default mode 32, reference mode 2); clipped to the number of
        samples.
    optimizer : {"sgd", "adam"}, default="sgd"
        SGD with momentum, or Adam.
    learning_rate : float, optional
        Initial learning rate (SGD: 0.05 with cosine decay in default mode, 0.01 constant
        in reference mode; Adam: 0.001).
    momentum : float, optional
        SGD momentum (both modes 0.9; unused by Adam).
    weight_decay : float, optional
        Weight decay (both modes 2e-4).
    max_iter : int, default=50
        Number of epochs (``n_epochs``).
    random_state : int, RandomState, Generator or None, default=None
        Seed of every random choice (topology, shuffling, dropout, evolution).
    n_threads : int, default=0
        Kernel threads (0 = all cores); results do not depend on it.
    backend : {"auto", "cython", "numba", "numpy"}, default="auto"
        Kernel backend.
    dtype : {"float32", "float64"}, default="float32"
        Floating precision of weights and activations.
    verbose : bool, default=False
        Log one line per epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted (``np.unique(y)``); column ``j`` of
        ``predict_proba`` is the probability of ``classes_[j]`` and ``predict`` returns
        these labels.
    coefs_ : list of scipy.sparse.csr_array
        Weight matrices of shape (n_in, n_out), by reference.
    intercepts_ : list of ndarray
        Biases.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in ``fit`` (only when they are all strings).
    history_ : list of dict
        Per-epoch metrics.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    loss_ : float
        Mean training loss of the last epoch.
    n_iter_ : int
        Epochs run.
    model_ : SparseMLP
        The trained model.
    config_ : TrainConfig
        The resolved training configuration.

    See Also
    --------
    sparsemlp.Trainer : The training loop this wraps.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sparsemlp import SparseMLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = SparseMLPClassifier(hidden_layer_sizes=(200,), max_iter=5, random_state=0)
    >>> clf.fit(X / 16, y).score(X / 16, y) > 0.8
    True
    """

    def __init__(self, hidden_layer_sizes=(100,), *, epsilon=20.0, zeta=0.3, topology="set",
                 mode="default", activation=None, dropout=None, batch_size=None,
                 optimizer="sgd", learning_rate=None, momentum=None, weight_decay=None,
                 max_iter=50,
                 random_state=None, n_threads=0, backend="auto", dtype="float32",
                 verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.epsilon = epsilon
        self.zeta = zeta
        self.topology = topology
        self.mode = mode
        self.activation = activation
        self.dropout = dropout
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_threads = n_threads
        self.backend = backend
        self.dtype = dtype
        self.verbose = verbose

    def _config(self, n_samples):
        own = type(self).__name__
        check_param("topology", self.topology, "str", options=("set", "static"), owner=own)
        check_param("optimizer", self.optimizer, "str", options=("sgd", "adam"), owner=own)
        lr = self.learning_rate
        if lr is None and self.optimizer == "adam":
            lr = _ADAM_LR
        seed = _seed(self.random_state)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**31)
        try:
            cfg = TrainConfig(
                mode=self.mode, hidden=_hidden_sizes(self.hidden_layer_sizes, own),
                epsilon=self.epsilon, zeta=(self.zeta,), topology=self.topology,
                activation=self.activation, dropout=self.dropout, batch_size=self.batch_size,
                optimizer=self.optimizer, lr=lr, momentum=self.momentum,
                weight_decay=self.weight_decay, epochs=self.max_iter, threads=self.n_threads,
                backend=self.backend, dtype=self.dtype, seed=seed,
            ).resolve()
        except ConfigError as exc:  # name the estimator's parameters, not TrainConfig's fields
            msg = str(exc)
            for field, param in _PARAM_OF_FIELD.items():
                msg = msg.replace(f"'{field}' parameter of", f"'{param}' parameter of")
            raise ValueError(msg.replace("parameter of TrainConfig", f"parameter of {own}")) from None
        if cfg.batch_size > n_samples:
            cfg = dataclasses.replace(cfg, batch_size=n_samples)
        return dataclasses.replace(cfg, drop_last=False)

    def fit(self, X, y):
        """Train on ``X`` and ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (scale it, e.g. with StandardScaler).
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : SparseMLPClassifier
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, accept_sparse="csr",
                             dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if self.classes_.shape[0] < 2:
            raise ValueError(f"SparseMLPClassifier needs samples of at least 2 classes in the "
                             f"data; got 1 class: {self.classes_.tolist()[0]!r}. Pass y with "
                             "two or more distinct labels.")
        cfg = self._config(X.shape[0])
        trainer = Trainer.from_config(cfg, X.shape[1], self.classes_.shape[0],
                                      verbose=self.verbose)
        trainer.fit(X, y_enc.astype(np.int64))
        self._set_fitted(trainer)
        return self

    def _set_fitted(self, trainer):
        # the trainer's optimizer state and gradient buffers (4-12 B per connection) are not
        # kept: a fitted estimator holds (and pickles) the model only
        self.config_ = trainer.config
        self.model_ = trainer.model
        self.coefs_ = [layer.W for layer in self.model_.layers]
        self.intercepts_ = [layer.b for layer in self.model_.layers]
        self.history_ = trainer.history.records
        self.loss_curve_ = [r["train_loss"] for r in self.history_]
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = trainer.epoch

    def _raw(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32],
                          reset=False)
        return self.model_.predict_raw(X, batch_size=self.config_.eval_batch_size)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities (sigmoid outputs of reference mode are normalised to sum 1).
        """
        p = self._raw(X).astype(np.float64)
        s = p.sum(axis=1, keepdims=True)
        return p / np.where(s > 0, s, 1.0)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``, columns in the order of ``classes_``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        raw = self._raw(X)
        return self.classes_[np.argmax(raw, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
