"""Waiting in tests: poll with a deadline, never sleep a fixed time.

A fixed sleep is too short on a busy machine and wasted on a quiet one, and a wall-clock upper
bound makes a test fail because the machine is slow, not because the code is wrong. Tests use the
project's one polling helper, the same the demo uses.
"""

from hyenaflow.local.polling import wait_for

__all__ = ["wait_for"]
