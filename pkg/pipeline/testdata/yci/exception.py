from yci.run import Bash


def milestone(pull):
    return pull['milestone']['title']


def test_generator(build_id, pull):
    for shard in range(2):
        yield Bash('./test.sh', env={'MILESTONE': milestone(pull), 'SHARD': shard})
