"""Information-theoretic quantities for layer-wise training: matrix-based Renyi alpha-order entropy estimators.

See :mod:`bench.info.estimators` for the definitions, formulas and the scale-invariance argument.
"""

from bench.info.estimators import (
    DEFAULT_EPS,
    METHODS,
    WIDTH_RULES,
    Width,
    feature_entropy,
    gram_matrix,
    joint_entropy,
    joint_gram,
    kernel_width,
    label_gram,
    matrix_entropy,
    mutual_information,
    pairwise_sq_dists,
)

__all__ = [
    "DEFAULT_EPS",
    "METHODS",
    "WIDTH_RULES",
    "Width",
    "feature_entropy",
    "gram_matrix",
    "joint_entropy",
    "joint_gram",
    "kernel_width",
    "label_gram",
    "matrix_entropy",
    "mutual_information",
    "pairwise_sq_dists",
]
