from yci.retry import IncrementalRetry


def test_generator(build_id, pull):
    yield IncrementalRetry('./test.sh', retries=3, retry_increment=600)
