# The seed's 2x2 matrix, written in valid Python.
from yci.retry import IncrementalRetry
from yci.run import Bash


def test_generator(build_id, pull):
    ENV_VAR_1 = ['foo', 'bar']
    ENV_VAR_2 = ['x', 'y']

    for x in ENV_VAR_1:
        for y in ENV_VAR_2:
            yield IncrementalRetry(Bash('./test.sh', env={'ENV_VAR_1': x, 'ENV_VAR_2': y}),
                                   retries=3, retry_increment=600)
