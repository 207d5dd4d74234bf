"""Information-theoretic quantities for layer-wise training: matrix-based Renyi alpha-order entropy estimators.

See :mod:`bench.info.estimators` for the definitions, formulas and the scale-invariance argument; this package
re-exports its public names (``estimators.__all__``).
"""

from bench.info import estimators
from bench.info.estimators import *  # noqa: F403  (the public names listed in estimators.__all__)

__all__ = list(estimators.__all__)
