def test_generator(build_id, pull):
    yield {'COMMAND': './test.sh'}
