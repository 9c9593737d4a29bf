# Prints a lot, then fails: the traceback must survive the noise.
def test_generator(build_id, pull):
    for i in range(100000):
        print('noise line %d' % i)
    raise RuntimeError('database unreachable')
    yield
