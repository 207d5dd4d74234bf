"""Built-in training methods, one file each, readable top to bottom like the paper's algorithm box.

Each file exposes ``method``: an object satisfying ``bench.method.Method``. Register a new one in
``bench/registry.py`` (built-in) or through the ``bench.methods`` entry-point group (plugin).
"""
