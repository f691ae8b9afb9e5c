"""Process exit codes of the ``flowengine`` command, in one place.

====  ====================  ==========================================================
code  name                  meaning
====  ====================  ==========================================================
0     OK                    the run finished and every threshold/expectation held
1     CRASH                 an unexpected error (Python's own code for an uncaught one)
2     BAD_INPUT             bad command line, scenario, tenant or credentials file
                            (click's code for a usage error)
98    EXPECTATIONS_FAILED   a journey step did not behave as its expectation said
99    THRESHOLDS_FAILED     the run finished but a threshold failed (k6's code)
130   INTERRUPTED           stopped by Ctrl-C / SIGINT (128 + 2), partial reports written
====  ====================  ==========================================================

A run that both crashed and failed thresholds exits ``CRASH``; one interrupted by the user
exits ``INTERRUPTED`` even when its partial figures break thresholds.
"""

from __future__ import annotations

import enum

__all__ = [
    "BAD_INPUT",
    "CRASH",
    "EXPECTATIONS_FAILED",
    "ExitCode",
    "INTERRUPTED",
    "OK",
    "THRESHOLDS_FAILED",
]


class ExitCode(enum.IntEnum):
    """Exit codes of the ``flowengine`` command (see the module docstring)."""

    OK = 0
    CRASH = 1
    BAD_INPUT = 2
    EXPECTATIONS_FAILED = 98
    THRESHOLDS_FAILED = 99
    INTERRUPTED = 130


OK = ExitCode.OK
CRASH = ExitCode.CRASH
BAD_INPUT = ExitCode.BAD_INPUT
EXPECTATIONS_FAILED = ExitCode.EXPECTATIONS_FAILED
THRESHOLDS_FAILED = ExitCode.THRESHOLDS_FAILED
INTERRUPTED = ExitCode.INTERRUPTED
