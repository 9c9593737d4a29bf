from yci.run import Bash


def test_generator(build_id, pull):
    yield Bash('./test.sh', name='first')
    yield './other.sh'
