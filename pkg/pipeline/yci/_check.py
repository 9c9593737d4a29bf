"""Checks shared by the test classes and the evaluator.

Each function returns the value normalised or raises TypeError/ValueError
with a message that names the argument and says what is expected. The limits
keep every value representable by the worker (durations, environments).
"""

import datetime
import math
import re

MAX_RETRIES = 100
MAX_SECONDS = 24 * 60 * 60
MAX_COMMAND = 64 * 1024
ENV_KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')


def _kind(value):
    return type(value).__name__


def _show(value):
    """Returns the type and a short repr of value, for messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + '...'
    return '%s %s' % (_kind(value), text)


def command(value):
    if not isinstance(value, str):
        raise TypeError('command must be a string, got %s' % _show(value))
    if not value.strip():
        raise ValueError('command is empty')
    if '\0' in value:
        raise ValueError('command contains a NUL character')
    if len(value.encode('utf-8', 'surrogatepass')) > MAX_COMMAND:
        raise ValueError('command is longer than %d bytes' % MAX_COMMAND)
    return str(value)


def env_value(key, value):
    """Returns value as a string: numbers are converted with str()."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError('env value of %s must be a string or a number, got %s'
                        % (key, _show(value)))
    text = str(value)
    if '\0' in text:
        raise ValueError('env value of %s contains a NUL character' % key)
    return text


def env_key(key):
    if not isinstance(key, str):
        raise TypeError('env keys must be strings, got %s' % _show(key))
    if not ENV_KEY.match(key):
        raise ValueError('env key %r is not a variable name (letters, digits, _)' % key[:60])
    return str(key)


def env(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError('env must be a dict, got %s' % _kind(value))
    return {env_key(k): env_value(k, v) for k, v in value.items()}


def name(value):
    """Only the type is checked here; the worker checks the characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError('name must be a string, got %s' % _show(value))
    return str(value)


def _number(label, value):
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError('%s must be a number of seconds, got %s' % (label, _show(value)))
    value = float(value)
    if not math.isfinite(value):
        raise ValueError('%s must be a finite number of seconds, got %r' % (label, value))
    return value


def seconds(label, value):
    value = _number(label, value)
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError('%s must be between 0 and %d seconds, got %g' % (label, MAX_SECONDS, value))
    return value


def timeout(value):
    if value is None:
        return None
    value = _number('timeout', value)
    if not 0 < value <= MAX_SECONDS:
        raise ValueError('timeout must be more than 0 and at most %d seconds, got %g'
                         % (MAX_SECONDS, value))
    return value


def retries(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError('retries must be a whole number, got %s' % _show(value))
    if not 0 <= value <= MAX_RETRIES:
        raise ValueError('retries must be between 0 and %d, got %d' % (MAX_RETRIES, value))
    return int(value)


def bash(value, cls):
    if not isinstance(value, cls):
        raise TypeError('IncrementalRetry wraps a Bash(...) test, got %s; write '
                        'IncrementalRetry(Bash(...), retries=3, retry_increment=600)'
                        % _show(value))
    return value
