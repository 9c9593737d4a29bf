def test_generator(build_id, pull):
    yield {'CMD': './test.sh', 'RETRIES': 2, 'DEBUG': None}
