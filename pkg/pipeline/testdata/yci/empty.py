def test_generator(build_id, pull):
    if pull.get('draft'):
        yield {'CMD': './test.sh'}
