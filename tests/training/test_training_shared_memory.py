"""textok.training.shared_memory: the all-reduce and all-gather of two real processes, the timeout that names a
process that never arrives, and the refusal on machines without x86's store ordering."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from textok.errors import TextokError
from textok.training.shared_memory import SharedMemoryGroup

CHILD = """
import json, os, sys, torch, torch.distributed as dist
from textok.training.shared_memory import SharedMemoryGroup
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank = dist.get_rank()
group = SharedMemoryGroup(timeout=float(sys.argv[1]))
out = {"reduced": [], "gathered": []}
for call in range(5):  # more calls than the two slot sets, two lengths: each length its own channel
    for n in (3, 1000):
        x = torch.arange(n, dtype=torch.float32) * (rank + 1) + call
        out["reduced"].append(group.all_reduce_mean_(x.clone())[:3].tolist())
        out["gathered"].append([g[:3].tolist() for g in group.all_gather(x)])
dist.barrier()
if sys.argv[2] == "late" and rank == 1:
    sys.exit(0)  # never arrives at the next call
try:
    group.all_reduce_mean_(torch.ones(3))  # a channel both made: no gloo call
except TimeoutError as e:
    out["timeout"] = str(e)
print(json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files() -> set[str]:
    return {f for f in os.listdir("/dev/shm") if f.startswith("textok-sync-")}


def _two(tmp_path, *args) -> list[dict]:
    before = _files()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    port, procs = _free_port(), []
    for rank in range(2):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank),
               "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(script), *args], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.splitlines()[-1]) if out.strip() else None)
    assert _files() <= before  # each file is unlinked once both have mapped it: nothing is left in /dev/shm
    return outs


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm")
def test_two_processes_reduce_and_gather_through_shared_memory(tmp_path):
    zero, one = _two(tmp_path, "60", "both")
    assert zero["reduced"] == one["reduced"]  # the same bits on both processes
    for call in range(5):
        for j, n in enumerate((3, 1000)):
            x0 = torch.arange(3, dtype=torch.float32) + call
            x1 = torch.arange(3, dtype=torch.float32) * 2 + call
            assert zero["reduced"][2 * call + j] == ((x0 + x1) / 2).tolist()
            assert zero["gathered"][2 * call + j] == one["gathered"][2 * call + j] == [x0.tolist(), x1.tolist()]
    assert "timeout" not in zero


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm")
def test_a_process_that_never_arrives_is_named(tmp_path):
    zero, one = _two(tmp_path, "2", "late")
    assert one is None and "process(es) [1] did not arrive within 2 s" in zero["timeout"]


def test_refuses_without_ordered_stores_or_a_process_group(monkeypatch):
    with pytest.raises(TextokError, match="torch.distributed initialised"):
        SharedMemoryGroup()
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    with pytest.raises(TextokError, match="x86's store ordering; this machine is aarch64"):
        SharedMemoryGroup()
