"""The one exception type of the text frontend.

A ValueError (and protos.status.StatusError) subclass: every failure here is
caused by an input (text, speaker, vocabulary file, missing system package) that
the caller can fix.
"""

from soundstorm.protos.status import StatusError


class FrontendError(StatusError, ValueError):
    """Bad input to the text frontend, or espeak-ng unavailable; the message names the problem."""
