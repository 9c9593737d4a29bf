from yci.retry import IncrementalRetry
from yci.run import Bash


def test_generator(build_id, pull):
    yield IncrementalRetry(Bash('./test.sh'), retries=-1, retry_increment=600)
