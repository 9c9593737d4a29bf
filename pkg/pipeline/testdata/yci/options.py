# Explicit names, timeouts, numbers as env values, default names.
import datetime

from yci.retry import IncrementalRetry
from yci.run import Bash


def test_generator(build_id, pull):
    yield Bash('go test ./...', name='unit', timeout=datetime.timedelta(minutes=5))
    yield IncrementalRetry(Bash('./e2e.sh', env={'SHARDS': 4, 'RATIO': 0.5}), retries=0,
                           retry_increment=1.5)
    yield Bash('./docs.sh')
    yield Bash('./lint.sh', env={'DB': 'postgres:16', 'EMPTY': ''})
