"""Small contracts of the evolution modules that mutation testing found unchecked."""

import numpy as np
import pytest

from sparsemlp.evolution.thresholds import kept_positions


def test_kept_positions_names_itself_by_default():
    with pytest.raises(ValueError, match=r"^The 'zeta' parameter of kept_positions must be a "
                                         r"float in the range \[0, 1\). Got 1.5 instead.$"):
        kept_positions(np.ones(3), 1.5)
