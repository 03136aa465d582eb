"""Loading profiles from preset names or user files.

Preset TOML files ship in ``edgeplan/profiles/data/``; each says what it is with a top-level ``kind`` key
(``"device"``, ``"wired_link"``, ``"channel"``). JSON files hold :class:`~edgeplan.profiles.model.ModelProfile`s;
the profiles of the zoo models (``edgeplan.validation.zoo``: ``resnet18``, ``gpt2``, ... at full size, and
``resnet18-small``, ``gpt2-small``, ... at the small size) ship in ``data/zoo/`` and load by name like the
other presets (kind ``"model"``), without torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from edgeplan.errors import ProfileError
from edgeplan.profiles import _toml
from edgeplan.profiles.devices import DeviceProfile
from edgeplan.profiles.links import WiredLink, WirelessChannel
from edgeplan.profiles.model import ModelProfile

Profile = DeviceProfile | WiredLink | WirelessChannel | ModelProfile

_KINDS: dict[str, Any] = {"device": DeviceProfile, "wired_link": WiredLink, "channel": WirelessChannel,
                          "model": ModelProfile}


def _data_dir() -> Path:
    return Path(str(resources.files("edgeplan.profiles") / "data"))


def list_presets(kind: str | None = None) -> list[str]:
    """Names of the shipped presets, sorted.

    Parameters
    ----------
    kind
        Only presets of this kind: ``"device"``, ``"wired_link"``, ``"channel"`` or ``"model"`` (the zoo models'
        profiles); default all.

    Returns
    -------
    list of str
    """
    if kind is not None and kind not in _KINDS:
        raise ProfileError(f"`kind` = {kind!r}; expected one of " + ", ".join(map(repr, _KINDS)))
    names = []
    if kind != "model":
        for p in sorted(_data_dir().glob("*.toml")):
            if kind is None or _toml.read_toml(p).get("kind", "device") == kind:
                names.append(p.stem)
    if kind in (None, "model"):
        names += [p.stem for p in sorted((_data_dir() / "zoo").glob("*.json"))]
    return names


def preset_path(name: str) -> Path:
    """Path of the preset called ``name`` (a device, link or channel TOML, or a zoo model's JSON profile);
    raises listing the available presets."""
    for p in (_data_dir() / f"{name}.toml", _data_dir() / "zoo" / f"{name}.json"):
        if "/" not in name and p.is_file():
            return p
    raise ProfileError(f"`name` = {name!r} is neither a file nor a preset; expected a path or one of "
                       + ", ".join(list_presets()))


def _from_toml(path: Path) -> Profile:
    data = _toml.read_toml(path)
    kind = _toml.take(data, "kind", "string", "", source=str(path), default="device")
    if kind not in _KINDS:
        raise ProfileError(f"profile file `{path}`: key `kind` = {kind!r}; expected one of "
                           + ", ".join(map(repr, _KINDS)))
    return _KINDS[kind].from_dict(data, source=str(path))


def load_profile(path_or_name: str | Path) -> Profile:
    """Load a profile from a file (``.toml`` device/link/channel, ``.json`` model) or a preset name.

    Parameters
    ----------
    path_or_name
        A file path, or a preset name (:func:`list_presets`: devices, links, channels and zoo model profiles).

    Returns
    -------
    DeviceProfile, WiredLink, WirelessChannel or ModelProfile

    Examples
    --------
    >>> load_profile("jetson-orin-nx-16gb").peak("fp16")
    15000000000000.0
    """
    if isinstance(path_or_name, Path) or (isinstance(path_or_name, str) and Path(path_or_name).suffix):
        p = Path(path_or_name)
        if not p.is_file():
            raise ProfileError(f"profile file `{p}` does not exist; expected a readable .toml or .json file")
        if p.suffix == ".json":
            return ModelProfile.load(p)
        if p.suffix == ".toml":
            return _from_toml(p)
        raise ProfileError(f"profile file `{p}` has suffix {p.suffix!r}; expected '.toml' or '.json'")
    if not isinstance(path_or_name, str) or not path_or_name:
        raise ProfileError(f"`path_or_name` = {path_or_name!r}; expected a preset name or a file path")
    path = preset_path(path_or_name)
    return ModelProfile.load(path) if path.suffix == ".json" else _from_toml(path)


def load_device(path_or_name: str | Path) -> DeviceProfile:
    """:func:`load_profile`, checked to be a :class:`DeviceProfile`."""
    prof = load_profile(path_or_name)
    if not isinstance(prof, DeviceProfile):
        raise ProfileError(f"`{path_or_name}` holds a {type(prof).__name__}; expected a device profile")
    return prof


def load_slide_library() -> dict[str, Any]:
    """The shipped SLIDE model library (``data/slide-library.json``): per-layer payload bits and forward FLOPs of
    ResNet-18/34/50 and DeiT-S at 224x224 in fp32/fp16/int8, measured on the torch models (its ``source`` says
    how; ``benchmarks/bench_slide.py --rebuild-library`` measures it again)."""
    import json

    return json.loads((_data_dir() / "slide-library.json").read_text())


__all__ = ["Profile", "list_presets", "load_device", "load_profile", "load_slide_library", "preset_path"]
