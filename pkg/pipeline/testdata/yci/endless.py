import itertools

from yci.run import Bash


def test_generator(build_id, pull):
    for i in itertools.count():
        yield Bash('./test.sh', env={'I': i})
