# Leaves a sleeper behind; the evaluator must kill it.
import os
import subprocess


def test_generator(build_id, pull):
    sleeper = subprocess.Popen(['sleep', '300'])
    with open(os.path.join(os.getcwd(), 'sleeper.pid'), 'w') as f:
        f.write(str(sleeper.pid))
    yield {'CMD': './test.sh'}
