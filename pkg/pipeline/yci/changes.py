"""What the tested change touches, for .yci.py files that test only what a
change needs::

    from yci.changes import changed_files
    from yci.run import Bash

    def test_generator(build_id, pull):
        files = changed_files()
        if any(f.startswith('docs/') for f in files):
            yield Bash('make docs', name='docs')
        if any(f.endswith('.py') for f in files):
            yield Bash('pytest', name='unit')

A matrix that yields nothing is a green ``yci`` saying "no tests for this
change", so a required check never blocks a pull request that needs no
tests.
"""

import os

_files = None  # set by the evaluator (_load) when the worker knows the change


def _load(path):
    """Reads the worker's NUL-separated list of changed paths (internal)."""
    global _files
    with open(path, 'rb') as f:
        data = f.read()
    _files = tuple(os.fsdecode(name) for name in data.split(b'\0') if name)


def changed_files():
    """Returns the paths the tested change touches, as a new sorted list.

    For a pull request: what GitHub's "Files changed" tab lists, from the
    merge base of its head and base to its head. For a merge group: from
    its base commit to its head. For ``worker -local``: from ``-base`` (by
    default the merge base with the upstream branch) to the working tree.
    Added, modified and deleted paths, and both names of a rename, relative
    to the repository's root with '/' separators, sorted bytewise as git
    sorts them. A name that is not UTF-8 comes with surrogate escapes
    (os.fsdecode), so os.fsencode gives its bytes back.

    Raises RuntimeError when YourCI did not tell what changed.
    """
    if _files is None:
        raise RuntimeError('YourCI did not say what changed for this evaluation')
    return list(_files)


__all__ = ['changed_files']
