import os


def test_generator(build_id, pull):
    print('leaving now')
    os._exit(0)
    yield {'CMD': './test.sh'}
