import time


def test_generator(build_id, pull):
    print('waiting for the database')
    time.sleep(3600)
    yield {'CMD': './test.sh'}
