"""CPUs this process may use, read from a fake /proc and /sys/fs/cgroup tree."""

import os

import pytest

from shuffle_kit.limits import InlineExecutor, available_cpus, cgroup_cpu_quota, executor, resolve_threads


def _tree(root, cgroup: str, files: dict[str, str], cpus: str = "0-7") -> str:
    os.makedirs(root / "proc/self")
    (root / "proc/self/cgroup").write_text(cgroup)
    (root / "proc/self/status").write_text(f"Name:\tpython\nCpus_allowed_list:\t{cpus}\n")
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return str(root)


def test_no_cgroup_quota_leaves_the_affinity(tmp_path):
    root = _tree(tmp_path, "0::/user.slice\n", {"sys/fs/cgroup/user.slice/cpu.max": "max 100000\n"}, cpus="0-3,6")
    assert cgroup_cpu_quota(root) is None
    assert available_cpus(root) == 5


def test_cgroup_v2_quota_caps_the_affinity_rounding_up(tmp_path):
    root = _tree(tmp_path, "0::/kubepods/pod1/c1\n", {
        "sys/fs/cgroup/kubepods/pod1/c1/cpu.max": "max 100000\n",
        "sys/fs/cgroup/kubepods/pod1/cpu.max": "150000 100000\n",  # a parent's quota binds too
        "sys/fs/cgroup/kubepods/cpu.max": "800000 100000\n",
    })
    assert cgroup_cpu_quota(root) == 1.5
    assert available_cpus(root) == 2


def test_cgroup_v1_quota(tmp_path):
    root = _tree(tmp_path, "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n", {
        "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000\n",
        "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    })
    assert cgroup_cpu_quota(root) == 3.0
    assert available_cpus(root) == 3


def test_cgroup_v1_without_quota_and_a_tiny_quota(tmp_path):
    root = _tree(tmp_path / "a", "2:cpu:/\n", {
        "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    })
    assert cgroup_cpu_quota(root) is None and available_cpus(root) == 8
    root = _tree(tmp_path / "b", "0::/\n", {"sys/fs/cgroup/cpu.max": "10000 100000\n"})
    assert available_cpus(root) == 1  # never less than one


def test_this_machine():
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_thread_counts_are_checked(bad):
    with pytest.raises(ValueError, match="threads"):
        resolve_threads(bad)


def test_one_thread_runs_in_the_caller():
    import threading

    with executor(1, "x") as pool:
        assert isinstance(pool, InlineExecutor)
        assert pool.submit(threading.get_ident).result() == threading.get_ident()
        failed = pool.submit(int, "not a number")
        assert isinstance(failed.exception(), ValueError)
    with executor(2, "x") as pool:
        assert pool.submit(threading.get_ident).result() != threading.get_ident()


def test_cgroup_memory_limits_v1_and_v2(tmp_path):
    from shuffle_kit.limits import cgroup_memory_limit, process_memory

    v2 = _tree(tmp_path / "v2", "0::/pod/c\n", {
        "sys/fs/cgroup/pod/c/memory.max": "max\n", "sys/fs/cgroup/pod/memory.max": "2147483648\n",
    })
    assert cgroup_memory_limit(v2) == 2 * 2**30
    assert process_memory(v2) == min(2 * 2**30, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    v1 = _tree(tmp_path / "v1", "5:memory:/docker/abc\n", {"sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n"})
    assert cgroup_memory_limit(v1) == 512 * 2**20  # the mount is the container's own cgroup
    none = _tree(tmp_path / "none", "5:memory:/\n0::/\n", {
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n", "sys/fs/cgroup/memory.max": "max\n",
    })
    assert cgroup_memory_limit(none) is None
