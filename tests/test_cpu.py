"""What the CPU can do, read from its flags: the class each benchmark files its speeds under, the bf16 rule."""

from __future__ import annotations

import pytest

from imtrans_core import cpu

XEON_AMX = "fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8"
EPYC_ZEN4 = "fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16"
EPYC_AVX2 = "fpu sse2 avx2 fma"


@pytest.fixture
def cpuinfo(monkeypatch, tmp_path):
    """Point the flag reader at a /proc/cpuinfo of our making (two processors, as the kernel lists them)."""

    def write(flags: str) -> None:
        path = tmp_path / "cpuinfo"
        block = f"processor\t: {{}}\nmodel name\t: a CPU\nflags\t\t: {flags}\n\n"
        path.write_text(block.format(0) + block.format(1))
        real = cpu.Path

        monkeypatch.setattr(cpu, "Path", lambda p: path if p == "/proc/cpuinfo" else real(p))
        cpu.cpu_flags.cache_clear()

    yield write
    cpu.cpu_flags.cache_clear()


@pytest.mark.parametrize(
    ("flags", "kind", "bf16"),
    [
        (XEON_AMX, "amx", True),
        (EPYC_ZEN4, "avx512-bf16", True),
        (EPYC_AVX2, "avx2", False),
        ("fpu avx512f", "avx512", False),
        ("fp asimd", "other", False),
    ],
)
def test_the_cpu_class_and_the_bf16_rule_follow_the_flags(cpuinfo, flags, kind, bf16):
    cpuinfo(flags)
    assert cpu.cpu_class() == kind and cpu.cpu_has_fast_bf16() is bf16
    assert set(cpu.speed_flags()) == set(flags.split()) & set(cpu.SPEED_FLAGS)


def test_no_cpuinfo_means_no_flags_and_no_bf16(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "Path", lambda p: tmp_path / "absent")
    cpu.cpu_flags.cache_clear()
    try:
        assert cpu.cpu_flags() == frozenset() and not cpu.cpu_has_fast_bf16() and cpu.cpu_class() == "other"
    finally:
        cpu.cpu_flags.cache_clear()


def test_the_avx2_check_shows_its_command_an_avx2_only_cpu():
    """``.ci/as-avx2`` (CONTRIBUTING.md): /proc/cpuinfo, imtrans, and the CPUID that numpy (like torch and
    OpenVINO) reads all show AVX2 without AVX-512."""
    import platform
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if platform.machine() != "x86_64" or not (shutil.which("qemu-x86_64") and shutil.which("unshare")):
        pytest.skip("needs an x86-64 Linux host with qemu-user (apt install qemu-user)")
    script = Path(__file__).resolve().parents[1] / ".ci" / "as-avx2"
    probe = (
        "from imtrans_core import cpu; print(cpu.cpu_class(), sorted(cpu.speed_flags()))\n"
        "print(open('/proc/cpuinfo').read().count('avx512'))\n"
        "try: from numpy._core._multiarray_umath import __cpu_features__ as f\n"
        "except ImportError: from numpy.core._multiarray_umath import __cpu_features__ as f  # numpy 1\n"
        "print(f['AVX2'], f['AVX512F'])"
    )
    ran = subprocess.run([str(script), sys.executable, "-c", probe], capture_output=True, text=True)
    if ran.returncode != 0 and ("unshare" in ran.stderr or "mount" in ran.stderr):
        pytest.skip(f"this host allows no private mount of /proc/cpuinfo: {ran.stderr.strip()}")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split("\n")[:3] == ["avx2 ['avx2', 'fma']", "0", "True False"]
    refused = subprocess.run([str(script), str(script)], capture_output=True, text=True)  # a script
    assert refused.returncode == 2 and "is a script; name its interpreter" in refused.stderr
