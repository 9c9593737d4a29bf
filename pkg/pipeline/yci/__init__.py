"""YourCI's helpers for .yci.py files.

A repository's .yci.py defines ``test_generator(build_id, pull)`` and yields
one test per configuration of its matrix::

    from yci.retry import IncrementalRetry
    from yci.run import Bash

    def test_generator(build_id, pull):
        for x in ['foo', 'bar']:
            yield IncrementalRetry(Bash('./test.sh', env={'ENV_VAR_1': x}),
                                   retries=3, retry_increment=600)

``yci.changes.changed_files()`` lists the paths the tested change touches,
so a matrix can run only what a change needs (and may yield nothing).

This package ships inside YourCI's binaries; nothing needs installing.
"""

from yci.retry import IncrementalRetry
from yci.run import Bash

__all__ = ['Bash', 'IncrementalRetry']
