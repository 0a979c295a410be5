"""The one exception type users see.

Every error caused by the user's input (a file that cannot be read, axes that
do not fit the method, a config value out of range) is raised as
:class:`MicrosightError` with a single line that says what is wrong and how to
fix it. The CLI prints that line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class MicrosightError(Exception):
    """An error in the user's input, reported as one clear line."""


class Cancelled(MicrosightError):
    """Long work stopped because the user (or a GUI) asked it to."""


class OutOfDistributionWarning(UserWarning):
    """An image given to a model lies outside the model's training distribution."""


class ColourWarning(UserWarning):
    """A colour image was made grey for a model that takes one channel."""
