"""SET-RBM features feeding a classifier: logistic regression on digits, raw pixels vs RBM.

A sparse RBM (``sparsemlp.SparseBernoulliRBM``, CSR weights rewired by SET after every
epoch) learns features of the 8x8 digits without labels; a logistic regression is then
trained on the hidden-unit probabilities, in one scikit-learn pipeline. The same logistic
regression on the raw pixels is the baseline. Needs scikit-learn
(``pip install -e ".[sklearn]"``). About 10 s on 2 cores::

    python examples/rbm_features_classifier.py [--n-components 400] [--n-iter 20]
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sparsemlp import SparseBernoulliRBM


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-components", type=int, default=400, help="hidden units")
    p.add_argument("--epsilon", type=float, default=10.0, help="Erdős–Rényi sparsity")
    p.add_argument("--n-iter", type=int, default=20, help="RBM epochs")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixels in [0, 1]: what Bernoulli visible units model
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=a.seed,
                                              stratify=y)
    raw = LogisticRegression(max_iter=5000).fit(X_tr, y_tr)
    t0 = time.perf_counter()
    rbm = SparseBernoulliRBM(n_components=a.n_components, epsilon=a.epsilon, n_iter=a.n_iter,
                             learning_rate=0.05, momentum=0.5, random_state=a.seed)
    pipe = make_pipeline(rbm, LogisticRegression(max_iter=5000)).fit(X_tr, y_tr)
    seconds = time.perf_counter() - t0
    W = rbm.components_
    print(f"logistic regression on raw pixels:   test accuracy {raw.score(X_te, y_te):.4f}")
    print(f"logistic regression on RBM features: test accuracy {pipe.score(X_te, y_te):.4f} "
          f"({seconds:.1f} s)")
    print(f"RBM: {W.shape[1]} visible x {W.shape[0]} hidden, {W.nnz} connections "
          f"({100 * W.nnz / (W.shape[0] * W.shape[1]):.1f}% of dense), reconstruction error "
          f"{rbm.history_[0]['train_recon']:.4f} -> {rbm.history_[-1]['train_recon']:.4f}, "
          f"mean pseudo-log-likelihood {np.mean(rbm.score_samples(X_te)):.2f}")
    return pipe.score(X_te, y_te), raw.score(X_te, y_te)


if __name__ == "__main__":
    main()
