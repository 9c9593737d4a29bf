def test_generator(build_id, pull):
    yield {'CMD': './test.sh', 'WHAT': 'source'}
