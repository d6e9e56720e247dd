"""The nspawn flavor's unified-hierarchy (cgroup v2) path, faked at the Linux-call boundary:
this host's unified hierarchy has no memory/cpu controllers (they are bound to v1), so a real
v2 pod cannot be limited here."""

from rkt_stage1_nspawn import cgroups, units
from rkt_core.pod.limits import AppLimits as Limits

MOUNTINFO = ("25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
             "26 1 0:23 / /proc rw - proc proc rw\n")


def _fake_host(monkeypatch, tmp_path):
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    (tmp_path / "cgroup").write_text("0::/user.slice\n")
    monkeypatch.setattr(cgroups, "_mountinfo", str(tmp_path / "mountinfo"))
    monkeypatch.setattr(cgroups, "_proc_cgroup", str(tmp_path / "cgroup"))


def test_a_cgroup2_only_host_is_unified(monkeypatch, tmp_path):
    _fake_host(monkeypatch, tmp_path)
    found = cgroups.hierarchies()
    assert found == [cgroups.Hierarchy("/sys/fs/cgroup", 2, (), "/user.slice")]
    assert cgroups.unified(found)
    assert found[0].systemd and found[0].name == ""
    assert found[0].pod_dir("u") == "/sys/fs/cgroup/user.slice/rkt-u"
    # nspawn mounts the pod's cgroup itself: no view is built
    assert cgroups.mount_view(found, "u", str(tmp_path / "view")) is False
    assert not (tmp_path / "view").exists()


def test_create_enables_the_available_v2_controllers(monkeypatch, tmp_path):
    root = tmp_path / "cg"
    parent = root / "user.slice"
    parent.mkdir(parents=True)
    (parent / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (parent / "cgroup.subtree_control").write_text("")
    monkeypatch.setattr(cgroups, "ROOT", str(root))
    pod = parent / "rkt-u"
    pod.mkdir()  # the kernel populates a new cgroup; the fake does it up front
    (pod / "cgroup.controllers").write_text("memory pids\n")
    (pod / "cgroup.subtree_control").write_text("")
    (pod / "cgroup.procs").write_text("")
    (pod / "payload").mkdir()
    (pod / "payload" / "cgroup.procs").write_text("")
    cgroups.create([cgroups.Hierarchy(str(root), 2, (), "/user.slice")], "u")
    assert (parent / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (pod / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (pod / "cgroup.procs").read_text() == "0"


def _service(unified):
    return units.AppService(app="a", image="i", main=units.Command("/bin/true", ("/bin/true",)),
                            working_directory="/", uid=0, gid=0, groups=(), environment={},
                            limits=Limits(memory_bytes=64 << 20, cpu_millis=500),
                            unified=unified)


def test_unified_host_limits_with_memory_max():
    v2 = units.app_service(_service(True), interactive=False)
    v1 = units.app_service(_service(False), interactive=False)
    assert f"MemoryMax={64 << 20}" in v2.splitlines() and "MemoryLimit" not in v2
    assert f"MemoryLimit={64 << 20}" in v1.splitlines() and "MemoryMax" not in v1
    assert "CPUQuota=50%" in v2.splitlines()
