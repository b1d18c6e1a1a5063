"""The processes a local run starts end when the run is gone, also when it is killed (`kill -9`, the OOM killer, a
closed terminal) and had no chance to stop them.

A local stage runs in `multiprocess` children: datatrove's Manager (forked from the run) and its pool workers
(forked from a fork server, not from the run). Left to themselves they outlive a killed run for good: a worker
waits on its task queue, whose pipe it holds both ends of, and keeps the fork server's "alive" pipe open, so the fork
server, which would end when the run is gone, never does; the Manager serves forever. A parent-death signal
(`PR_SET_PDEATHSIG`) does not fit either: a worker's parent is the fork server, and the signal follows the thread
that forked rather than the process.

What does fit is the pipe multiprocess gives every child for this (`parent_process().sentinel`): its other end is
held by the process that started the child, so it reads as closed the moment that process is gone, however it ended.
Every `multiprocess` child started from a process that imported this module (the run, and the fork server, which
preloads it) watches that pipe from a daemon thread and exits as soon as it closes. With the workers and the Manager
gone, the fork server and multiprocess's resource tracker see their own pipes close and exit on their own.
"""

from __future__ import annotations

import os
import threading

import multiprocess
from multiprocess import util
from multiprocess.connection import wait

# the exit status of a child whose parent is gone (nobody reads it: the fork server reports it to the dead run)
ORPHANED = 1


def _watch_parent(_module) -> None:
    """Called by multiprocess in each child it starts, before the child's own work."""
    parent = multiprocess.parent_process()
    if parent is None or parent.sentinel is None:
        return
    threading.Thread(target=_exit_when_closed, args=(parent.sentinel,), name="exit-with-parent", daemon=True).start()


def _exit_when_closed(sentinel) -> None:
    wait([sentinel])  # readable only once the parent's end is closed: the parent ended
    os._exit(ORPHANED)  # not sys.exit: the child's main thread may be busy, or blocked for good on a dead queue


# multiprocess keeps the registration as long as the object (here its own module) lives, and runs it in every child
# after the fork, in the child, with `parent_process()` already set
util.register_after_fork(multiprocess, _watch_parent)
