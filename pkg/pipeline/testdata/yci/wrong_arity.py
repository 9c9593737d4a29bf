def test_generator(build_id):
    yield {'CMD': './test.sh'}
