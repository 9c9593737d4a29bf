from yci.retry import IncrementalRetry
from yci.run import Bash

def test_generator(build_id, pull):
    ENV_VAR_1 = ['foo', 'bar']
    ENV_VAR_2 = ['x', 'y']

    for x in ENV_VAR_1:
        for y in ENV_VAR_2:
            # there i can skip or implement basic logic
            # I could even iterate over a set of files

            yield IncrementalRetry(retries=3, retry_increment=600,
                Bash('./test.sh', env={'ENV_VAR_1': x, 'ENV_VAR_2': y}))
