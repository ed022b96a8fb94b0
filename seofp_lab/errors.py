"""Errors users see as one clear message (the CLI prints them without a traceback)."""


class SeofpError(Exception):
    """Base of the project's expected errors: bad input named with what was expected."""


class CorpusLayoutError(SeofpError):
    """A corpus root does not have the layout its kind expects (docs/data.md#layout-errors)."""


class AudioError(SeofpError):
    """An audio file that cannot be used: unreadable, empty, wrong rate, wrong channel count."""


class ModelFileError(SeofpError):
    """A .seofp file that is truncated, corrupted or otherwise refused by the loader."""


class TrackingError(SeofpError):
    """A run, artifact or store that MLflow cannot give us."""


class StudyError(SeofpError):
    """A listening study, token or answer that cannot be accepted."""


class ReportError(SeofpError):
    """A report that cannot be written where it was asked to go."""


class PairingError(SeofpError):
    """Runs that cannot be compared pair by pair: different test sets, no scores, bad margin."""
