from yci.run import Bash


def test_generator(build_id, pull):
    yield Bash('./test.sh', env={'DB': 'postgres:16'})
    yield Bash('./test.sh', env={'DB': 'postgres/16'})
