"""Device profiles: presets, the two energy conventions, the compute model and malformed files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from edgeplan.errors import ProfileError
from edgeplan.profiles import (
    DEVICE_CLASSES,
    DeviceProfile,
    EnergyConvention,
    PowerModel,
    list_presets,
    load_device,
    load_profile,
)
from edgeplan.profiles.loading import preset_path

DEVICES = list_presets("device")


def test_at_least_ten_device_presets_covering_the_issue_list() -> None:
    assert len(DEVICES) >= 10
    for name in ("jetson-nano", "jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "raspberry-pi-4", "raspberry-pi-5",
                 "phone-midrange", "phone-flagship", "laptop-cpu", "edge-server-t4", "cloud-a100", "cloud-h100"):
        assert name in DEVICES
    classes = {load_device(n).device_class for n in DEVICES}
    assert classes == set(DEVICE_CLASSES)


@pytest.mark.parametrize("name", DEVICES)
def test_every_preset_loads_cites_sources_and_is_consistent(name: str) -> None:
    d = load_device(name)
    assert d.name == name
    text = preset_path(name).read_text()
    # every numeric assignment carries a comment saying where it comes from
    numeric = re.compile(r"^\s*\w+\s*=\s*[-+0-9.eE_]+\s*(#.*)?$")
    lines = [line for line in text.splitlines() if numeric.match(line)]
    assert len(lines) >= 8
    for line in lines:
        assert "#" in line, f"{name}: uncommented number: {line!r}"
    assert d.clock_min_hz <= d.clock_max_hz
    assert d.power.convention == EnergyConvention.KAPPA
    # peak rate at the max clock equals clock / cycles-per-flop
    assert d.peak("fp32" if "fp32" in d.peak_flops_per_s else "int8") > 0
    assert d.cycles_per_flop("fp32") == pytest.approx(d.clock_max_hz / d.peak("fp32"))


def test_datasheet_numbers_of_a_few_presets() -> None:
    assert load_device("cloud-a100").peak("fp16") == 312e12
    assert load_device("cloud-h100").peak("bf16") == pytest.approx(989.5e12)
    assert load_device("edge-server-t4").peak("int8") == 130e12
    assert load_device("jetson-orin-nx-16gb").clock_max_hz == 918e6
    assert load_device("jetson-orin-nano-8gb").clock_max_hz == 624.75e6


def test_energy_conventions_differ_by_exactly_two() -> None:
    kappa = PowerModel(1e-27, "kappa")
    alpha = PowerModel(2e-27, "half_alpha")        # E = (alpha/2) C f^2 with alpha = 2e-27
    assert kappa.kappa == alpha.kappa == 1e-27
    assert kappa.coefficient_as("half_alpha") == 2e-27
    assert alpha.coefficient_as(EnergyConvention.KAPPA) == 1e-27
    cycles, f = 5 * 1e4 * 500, 1e9                    # DAGSA author code: E * gamma * D at 1 GHz
    assert kappa.energy_j(cycles, f) == pytest.approx(1e-27 * cycles * f**2)   # = alpha * E gamma D f^2
    assert alpha.energy_j(cycles, f) == pytest.approx(0.5 * 2e-27 * cycles * f**2)
    assert kappa.dynamic_power_w(f) == pytest.approx(1e-27 * f**3)             # SLIDE: Psi f^3


def test_power_model_rejects_unknown_convention() -> None:
    with pytest.raises(ProfileError, match=r"`convention` = 'alpha'; expected one of 'kappa', 'half_alpha'"):
        PowerModel(1e-27, "alpha")  # type: ignore[arg-type]
    with pytest.raises(ProfileError, match=r"`coefficient` = -1.0; expected a value >= 0.0"):
        PowerModel(-1.0, "kappa")


def test_compute_time_and_energy_follow_the_dvfs_model() -> None:
    d = load_device("jetson-orin-nx-16gb")
    w = np.array([1e9, 2e9])
    t_max = d.compute_time_s(w)
    np.testing.assert_allclose(t_max, w / (d.efficiency * d.peak("fp32")))
    t_half = d.compute_time_s(w, freq_hz=d.clock_max_hz / 2)
    np.testing.assert_allclose(t_half, 2 * t_max)
    # E = kappa * cycles * f^2 with cycles = c_d W / eta; and t = cycles / f
    f = 306e6
    cycles = d.cycles(w)
    np.testing.assert_allclose(d.compute_energy_j(w, freq_hz=f), d.power.kappa * cycles * f**2)
    np.testing.assert_allclose(d.compute_time_s(w, freq_hz=f), cycles / f)
    assert d.compute_time_s(1e9, "fp16") < d.compute_time_s(1e9, "fp32")


def test_device_method_errors() -> None:
    d = load_device("raspberry-pi-4")
    with pytest.raises(ProfileError, match=r"`dtype` = 'fp16' is not supported by device `raspberry-pi-4`"):
        d.peak("fp16")
    with pytest.raises(ProfileError, match=r"`freq_hz` = 3000000000.0 exceeds `clock_max_hz`"):
        d.compute_time_s(1e9, freq_hz=3e9)
    assert d.h2d_time_s(1e6) == 0.0           # the CPU is the compute unit: no copy
    assert load_device("edge-server-t4").h2d_time_s(12e9) == pytest.approx(1.0)
    assert bool(d.fits(1e9)) and not bool(d.fits(1e12))


def test_constructor_validation_messages() -> None:
    base = load_device("laptop-cpu")
    kw = {f: getattr(base, f) for f in base.__dataclass_fields__}
    with pytest.raises(ProfileError, match=r"`device_class` = 'toaster'; expected one of 'phone'"):
        DeviceProfile(**{**kw, "device_class": "toaster"})
    with pytest.raises(ProfileError, match=r"`efficiency` = 1.5; expected a value <= 1.0"):
        DeviceProfile(**{**kw, "efficiency": 1.5})
    with pytest.raises(ProfileError, match=r"`clock_min_hz` = 5000000000.0; expected a value <= `clock_max_hz`"):
        DeviceProfile(**{**kw, "clock_min_hz": 5e9})
    with pytest.raises(ProfileError, match=r"`peak_flops_per_s key` = 'fp4'; expected one of"):
        DeviceProfile(**{**kw, "peak_flops_per_s": {"fp4": 1e12}})
    with pytest.raises(ProfileError, match=r"expected at least an `fp32` or `int8` entry"):
        DeviceProfile(**{**kw, "peak_flops_per_s": {"fp16": 1e12}})


def test_toml_round_trip_including_calibration(tmp_path: Path) -> None:
    d = load_device("edge-server-t4").with_calibration({"conv": 3e12, "linear": 4e12}, block_overhead_s=1e-5,
                                                      op_overhead_s=2e-6, effective_bandwidth_bytes_per_s=2e11)
    path = tmp_path / "t4.toml"
    path.write_text(d.to_toml())
    back = load_profile(path)
    assert back == d
    assert back.effective_flops_per_s("fp32", "conv") == 3e12
    assert back.effective_flops_per_s("fp32", "pool") == d.efficiency * d.peak("fp32")


GOOD = """
kind = "device"
name = "mine"
class = "laptop"
efficiency = 0.5
memory_bytes = 8e9
memory_bandwidth_bytes_per_s = 5e10
clock_min_hz = 1e9
clock_max_hz = 3e9
[peak_flops_per_s]
fp32 = 1e11
[power]
convention = "half_alpha"
coefficient = 2e-28
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "dev.toml"
    p.write_text(text)
    return p


def test_user_file_loads_and_converts_convention(tmp_path: Path) -> None:
    d = load_profile(_write(tmp_path, GOOD))
    assert isinstance(d, DeviceProfile)
    assert d.power.kappa == pytest.approx(1e-28)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("clock_max_hz = 3e9", 'clock_max_hz = "fast"',
     r"dev.toml`: key `clock_max_hz` = 'fast' has type str; expected a number in hertz"),
    ("memory_bytes = 8e9\n", "", r"key `memory_bytes` is missing; expected a number in bytes"),
    ("fp32 = 1e11", "fp32 = -1.0", r"key `peak_flops_per_s.fp32` = -1.0; expected a number in FLOP/s > 0.0"),
    ('convention = "half_alpha"', "", r"key `power.convention` is missing; expected a string"),
    ('convention = "half_alpha"', 'convention = "alpha"',
     r"key `power.convention` = 'alpha'; expected one of 'kappa', 'half_alpha'"),
    ("coefficient = 2e-28", 'coefficient = "tiny"',
     r"key `power.coefficient` = 'tiny' has type str; expected a number in W/Hz\^3"),
    ("efficiency = 0.5", "efficency = 0.5", r"unknown key `efficency`; expected one of"),
    ('class = "laptop"', 'class = "fridge"', r"key `class` = 'fridge'; expected one of 'phone'"),
    ("clock_min_hz = 1e9", "clock_min_hz = 1e9\nmax_tx_power_w = true",
     r"key `max_tx_power_w` = True has type bool; expected a number in watts"),
])
def test_malformed_file_names_file_key_type_and_unit(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_power_must_be_a_table(tmp_path: Path) -> None:
    text = GOOD.replace('[power]\nconvention = "half_alpha"\ncoefficient = 2e-28\n', "")
    text = text.replace('kind = "device"', 'kind = "device"\npower = 3')
    with pytest.raises(ProfileError, match=r"dev.toml`: key `power` = 3 has type int; expected a table"):
        load_profile(_write(tmp_path, text))


def test_invalid_toml_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"`.*dev.toml` is not valid TOML"):
        load_profile(_write(tmp_path, "name = = 3"))
    with pytest.raises(ProfileError, match=r"profile file `.*nope.toml` does not exist"):
        load_profile(tmp_path / "nope.toml")
    with pytest.raises(ProfileError, match=r"has suffix '.yaml'; expected '.toml' or '.json'"):
        (tmp_path / "a.yaml").write_text("x")
        load_profile(tmp_path / "a.yaml")
    with pytest.raises(ProfileError, match=r"`name` = 'jetson-nanoo' is neither a file nor a preset; expected"):
        load_profile("jetson-nanoo")
    with pytest.raises(ProfileError, match=r"key `kind` = 'router'; expected one of 'device'"):
        load_profile(_write(tmp_path, 'kind = "router"\nname = "x"'))
    with pytest.raises(ProfileError, match=r"`kind` = 'gpu'; expected one of 'device'"):
        list_presets("gpu")
    with pytest.raises(ProfileError, match=r"holds a WiredLink; expected a device profile"):
        load_device("ethernet-1g")
