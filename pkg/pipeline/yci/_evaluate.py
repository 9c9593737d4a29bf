"""Evaluates a repository's .yci.py for the YourCI worker (internal).

Usage: python3 -I -B -u -X utf8 .../yci/_evaluate.py SOURCE_DIR BUILD_ID
       PULL_JSON RESULT_FD MAX_TESTS STACKS_FD [CHANGES]

The result goes to the pipe RESULT_FD, never to stdout, so whatever .yci.py
prints cannot corrupt it: {"tests": [...]} or {"error": {...}}. Nothing there
means the interpreter died before reporting (os._exit, a kill). On SIGUSR1,
which the worker sends when the time limit is reached, the stacks of every
thread go to the pipe STACKS_FD, so a hang can be located. Both are pipes the
worker opened: nothing is read back from a file this process could replace.
CHANGES, when given and not empty, is a file of the changed paths, each
followed by a NUL, which yci.changes.changed_files() returns.
"""

# Everything the evaluator needs is imported before the checkout joins
# sys.path, so a file in the repository cannot shadow it.
import faulthandler
import json
import os
import re
import signal
import sys
import traceback
import types

DRIVER = os.path.abspath(__file__)
PKG_ROOT = os.path.dirname(os.path.dirname(DRIVER))
sys.path.insert(0, PKG_ROOT)

from yci import _check  # noqa: E402 (needs PKG_ROOT on sys.path)
from yci import changes  # noqa: E402
from yci.retry import IncrementalRetry  # noqa: E402
from yci.run import Bash  # noqa: E402

CONFIG = '.yci.py'
MAX_DETAIL = 32 * 1024
WANT_ITEM = ("yield Bash(...), IncrementalRetry(Bash(...), ...) "
             "or a dict with a 'CMD' key")
DICT_KEYS = ('CMD', 'RETRIES', 'RETRY_AFTER', 'TIMEOUT', 'NAME')


class Failure(Exception):
    """A located problem with .yci.py, reported to the worker as is."""

    def __init__(self, line, message, detail='', file=CONFIG, example=False):
        super().__init__(message)
        self.file, self.line, self.message, self.detail = file, line, message, detail
        self.example = example  # the worker adds a minimal .yci.py to the detail

    def as_dict(self, dirs):
        """Shows files of dirs (the checkout, this package) relative to them."""
        fields = [self.file, self.message, self.detail[-MAX_DETAIL:]]
        for d in dirs:
            fields = [text.replace(d.rstrip('/') + '/', '') for text in fields]
        return dict(zip(['file', 'message', 'detail'], fields), line=self.line,
                    example=self.example)


class AttrDict(dict):
    """A JSON object readable both as pull['head']['ref'] and pull.head.ref.

    Keys that are also dict methods (items, keys, ...) need the [] form.
    """

    __slots__ = ()

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError('no field %r in %s' % (key, sorted(self)[:20])) from None


def main(argv):
    source_dir, build_id, pull_path, result_fd = argv[1:5]
    max_tests, stacks_fd = int(argv[5]), int(argv[6])
    if len(argv) > 7 and argv[7]:
        changes._load(argv[7])
    with open(pull_path, encoding='utf-8') as f:
        pull = json.load(f, object_hook=AttrDict)
    # Commands .yci.py starts (os.system) need not inherit the pipes.
    for fd in (int(result_fd), stacks_fd):
        os.set_inheritable(fd, False)
    stacks = os.fdopen(stacks_fd, 'w')
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    sys.path.insert(1, source_dir)
    sys.argv = [CONFIG]
    try:
        result = {'tests': evaluate(source_dir, int(build_id), pull, max_tests)}
    except Failure as failure:
        result = {'error': failure.as_dict([source_dir, PKG_ROOT])}
    with os.fdopen(int(result_fd), 'w', encoding='utf-8') as f:
        json.dump(result, f)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the user's atexit handlers and non-daemon threads: they must not
    # hold the worker once the tests are known.
    os._exit(0)


def evaluate(source_dir, build_id, pull, max_tests):
    module = load(os.path.join(source_dir, CONFIG))
    generator = getattr(module, 'test_generator', None)
    if generator is None:
        raise Failure(0, 'defines no function test_generator(build_id, pull)', example=True)
    if not callable(generator):
        raise Failure(0, 'test_generator is a %s, not a function' % type(generator).__name__,
                      example=True)
    def_line = getattr(getattr(generator, '__code__', None), 'co_firstlineno', 0)
    try:
        items = iter(generator(build_id, pull))
    except BaseException as exc:
        raise user_failure(exc, def_line) from None
    tests = []
    while True:
        try:
            item = next(items)
        except StopIteration:
            break
        except BaseException as exc:
            raise user_failure(exc, def_line) from None
        number, line = len(tests) + 1, yield_line(items, def_line)
        if number > max_tests:
            raise Failure(line, 'test_generator yielded more than %d tests: stopped there '
                          '(an endless loop?)' % max_tests)
        try:
            tests.append(convert(item, number, line))
        except Failure:
            raise
        except BaseException as exc:
            raise user_failure(exc, line) from None
    # No tests is a verdict too: a change that needs none (docs only,
    # say) gets a green yci saying so, rather than a check that never
    # reports and blocks the pull request.
    return tests


def load(path):
    with open(path, 'rb') as f:
        source = f.read()
    try:
        code = compile(source, CONFIG, 'exec', dont_inherit=True)
    except SyntaxError as exc:
        raise syntax_failure(exc, source) from None
    except ValueError as exc:
        raise Failure(0, 'cannot be compiled: %s' % exc) from None
    module = types.ModuleType('yci_config')
    module.__file__ = path
    sys.modules[module.__name__] = module
    try:
        exec(code, module.__dict__)
    except SyntaxError as exc:
        raise syntax_failure(exc, b'') from None
    except BaseException as exc:
        raise user_failure(exc, 0) from None
    return module


def syntax_failure(exc, source):
    detail = ''.join(traceback.format_exception_only(type(exc), exc))
    message = '%s: %s' % (type(exc).__name__, exc.msg)
    if exc.msg == 'positional argument follows keyword argument':
        message = exc.msg
        lines = source.decode('utf-8', 'replace').splitlines()
        first = max(0, (exc.lineno or 1) - 10)
        statement = '\n'.join(lines[first:getattr(exc, 'end_lineno', None) or exc.lineno or 0])
        fix = keyword_fix(statement)
        message += ': ' + fix
        detail += '\nPython takes positional arguments first, then keyword ones: %s.\n' % fix
    return Failure(exc.lineno or 0, message, detail, file=exc.filename or CONFIG)


def keyword_fix(statement):
    """Says how to reorder the seed's IncrementalRetry(retries=..., Bash(...))."""
    call = statement[statement.rfind('IncrementalRetry('):]
    if 'IncrementalRetry(' not in statement or 'Bash(' not in call:
        return 'put positional arguments before keyword arguments'
    retries = re.search(r'\bretries\s*=\s*([^,()\s]+)', call)
    increment = re.search(r'\bretry_increment\s*=\s*([^,()\s]+)', call)
    return 'put Bash(...) first: IncrementalRetry(Bash(...), retries=%s, retry_increment=%s)' % (
        retries.group(1) if retries else 'N', increment.group(1) if increment else 'S')


def user_failure(exc, fallback_line):
    """Reports an exception raised by the user's code, with its traceback."""
    if isinstance(exc, SyntaxError) and exc.filename != CONFIG:
        return syntax_failure(exc, b'')
    report = traceback.TracebackException.from_exception(exc)
    frames = [f for f in report.stack if os.path.abspath(f.filename) != DRIVER]
    report.stack = traceback.StackSummary.from_list(frames)
    line = fallback_line
    for frame in frames:
        if frame.filename == CONFIG:
            line = frame.lineno
    if isinstance(exc, SystemExit):
        message = 'called sys.exit(%r): yield tests instead of exiting' % (exc.code,)
    else:
        message = ' '.join(''.join(traceback.format_exception_only(type(exc), exc)).split())
    if len(message) > 300:
        message = message[:297] + '...'
    return Failure(line, message, ''.join(report.format()))


def yield_line(items, def_line):
    """Returns the line of .yci.py where a generator is suspended."""
    frame = getattr(items, 'gi_frame', None)
    if frame is not None and frame.f_code.co_filename == CONFIG:
        return frame.f_lineno
    return def_line


def convert(item, number, line):
    """Turns one yielded item into the record the worker reads."""
    try:
        if isinstance(item, dict):
            return convert_dict(item, number, line)
        retries, increment, test = 0, 0.0, item
        if isinstance(item, IncrementalRetry):
            test = _check.bash(item.test, Bash)
            retries = _check.retries(item.retries)
            increment = _check.seconds('retry_increment', item.retry_increment)
        if not isinstance(test, Bash):
            raise Failure(line, 'item %d is a %s, not a test: %s'
                          % (number, type(item).__name__, WANT_ITEM))
        return record(number, line, _check.name(test.name), _check.command(test.command),
                      _check.env(test.env), retries, increment, _check.timeout(test.timeout))
    except (TypeError, ValueError) as exc:
        raise Failure(line, 'item %d: %s' % (number, exc)) from None


def convert_dict(item, number, line):
    """Reads the prototype's form: {'CMD': ..., 'RETRIES': 3, 'RETRY_AFTER': 600, env...}."""
    if 'CMD' not in item:
        raise Failure(line, "item %d is a dict without a 'CMD' key: %s" % (number, WANT_ITEM))
    env = _check.env({k: v for k, v in item.items() if k not in DICT_KEYS})
    return record(number, line, _check.name(item.get('NAME')), _check.command(item['CMD']), env,
                  _check.retries(item.get('RETRIES', 0)),
                  _check.seconds('RETRY_AFTER', item.get('RETRY_AFTER', 0)),
                  _check.timeout(item.get('TIMEOUT')))


def record(number, line, name, command, env, retries, increment, timeout):
    return {'item': number, 'line': line, 'name': name, 'command': command,
            'env': [[k, v] for k, v in env.items()], 'retries': retries,
            'retry_increment': increment, 'timeout': timeout or 0}


if __name__ == '__main__':
    main(sys.argv)
