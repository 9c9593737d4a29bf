# Reads the pull request both ways and uses the build id.
from yci.run import Bash


def test_generator(build_id, pull):
    assert pull['head']['ref'] == pull.head.ref
    yield Bash('./test.sh', name='build-%d' % build_id,
               env={'BRANCH': pull.head.ref, 'BASE': pull['base']['ref'],
                    'AUTHOR': pull.user.login, 'LABEL': pull.labels[0].name})
