"""Errors a user can cause. The CLI prints their message and exits non-zero, without a traceback."""


class BenchError(Exception):
    """A user-facing error: the message says what was wrong, what is accepted and what to do."""


class UnknownNameError(BenchError):
    """An unknown method, architecture, dataset or protocol name."""


class ConfigError(BenchError):
    """A bad configuration value (unknown key, wrong type, out of range)."""


class DatasetError(BenchError):
    """A dataset that is missing, corrupt or in an unexpected format."""


class ArchitectureError(BenchError):
    """An architecture that cannot be built or split as asked."""


class DivergedError(BenchError):
    """Training produced a NaN or infinite loss."""
