from yci.run import Bash


def generate_tests(build_id, pull):
    yield Bash('./test.sh')
