from yci.retry import IncrementalRetry
from yci.run import Bash, Docker


def test_generator(build_id, pull):
    yield Bash('./test.sh')
