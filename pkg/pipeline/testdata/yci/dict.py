# The owner's first prototype yielded plain dicts.
def test_generator(build_id, pull):
    yield {'CMD': './test.sh', 'ENV_VAR_1': 'foo', 'RETRIES': 3, 'RETRY_AFTER': 600}
    yield {'CMD': 'make lint', 'NAME': 'lint', 'TIMEOUT': 90}
