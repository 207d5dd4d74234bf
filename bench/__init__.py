"""layerbench: a benchmark harness for layer-wise training of CNNs.

The import name is ``bench``; the distribution is ``layerbench``.
"""

__version__ = "0.1.0"
