from yci.run import Bash


def test_generator(build_id, pull):
    for python in ['3.11', '3.12', '3.11']:
        yield Bash('./test.sh', env={'PYTHON': python})
