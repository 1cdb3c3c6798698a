"""One exception hierarchy for the host tools, mapped to exit codes in one place (cli.py)."""


class SipfwError(Exception):
    """A failure the user can act on: printed as one line, no traceback."""

    exit_code = 1


class UsageError(SipfwError):
    exit_code = 2


class PortError(SipfwError):
    """No board, a busy port, or several boards where one was expected."""

    exit_code = 3


class ConfigError(SipfwError):
    """A config file that fails validation; the message names the key."""

    exit_code = 4


class BoardError(SipfwError):
    """The board did not answer as a MicroPython board running sipfw should."""

    exit_code = 5
