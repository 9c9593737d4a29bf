"""Retrying flaky tests."""

from yci import _check
from yci.run import Bash


class IncrementalRetry:
    """Retries ``test`` up to ``retries`` times after a failed attempt.

    The k-th retry starts ``k * retry_increment`` seconds after the failure
    before it: with retries=3 and retry_increment=600 the waits are 10, 20
    and 30 minutes.
    """

    def __init__(self, test, retries=3, retry_increment=600):
        self.test = _check.bash(test, Bash)
        self.retries = _check.retries(retries)
        self.retry_increment = _check.seconds('retry_increment', retry_increment)

    def __repr__(self):
        return 'IncrementalRetry(%r, retries=%r, retry_increment=%r)' % (
            self.test, self.retries, self.retry_increment)
