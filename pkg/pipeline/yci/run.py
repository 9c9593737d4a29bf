"""Tests that run a command with bash."""

from yci import _check


class Bash:
    """Runs ``command`` with bash in the build's source directory.

    ``env`` is a dict of extra environment variables (string keys; string or
    number values), ``name`` the test's name (by default the env values joined
    by '-'), ``timeout`` a limit in seconds for one attempt (None: the
    worker's default). Arguments are checked here, so a mistake is reported
    at the line that made it.
    """

    def __init__(self, command, env=None, name=None, timeout=None):
        self.command = _check.command(command)
        self.env = _check.env(env)
        self.name = _check.name(name)
        self.timeout = _check.timeout(timeout)

    def __repr__(self):
        return 'Bash(%r, env=%r, name=%r, timeout=%r)' % (
            self.command, self.env, self.name, self.timeout)
