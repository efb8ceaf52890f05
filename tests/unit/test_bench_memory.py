"""`bench.memory`: the resident memory of a process tree (W9), read from /proc."""

import subprocess
import sys

import pytest
from tritonstack.loadtest.bench.memory import descendants, tree_rss

from tritonstack.errors import LoadTestError


def test_tree_rss_counts_the_process_and_every_descendant():
    # a child that allocates ~64 MiB and starts a grandchild: both must be in the tree
    code = ("import subprocess, sys, time; block = b'x' * (64 << 20); "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print('ready', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        tree = tree_rss(child.pid)
        pids = [p.pid for p in tree.processes]
        print(f"\n{len(pids)} processes, {tree.total_bytes / 2**20:.1f} MiB: {tree.by_name()}")
        assert pids[0] == child.pid and len(pids) == 2 and pids[1:] == descendants(child.pid)
        assert tree.processes[0].rss_bytes > 64 << 20  # the block is written, so resident
        assert tree.total_bytes == sum(tree.by_name().values())
    finally:
        for pid in descendants(child.pid):
            subprocess.run(["kill", str(pid)], check=False)
        child.kill()
        child.wait(timeout=30)


def test_tree_rss_of_a_missing_process_says_so():
    with pytest.raises(LoadTestError, match="process 999999999 is not running"):
        tree_rss(999999999)
