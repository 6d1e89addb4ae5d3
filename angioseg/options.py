"""Parsing and checking of the option strings every layer shares: specs such as
``seq-cenet:k=2,motion=none`` or ``raft:weights=w.pth,iterations=20``, and torch devices.

Kept below every other layer (it imports only `angioseg.errors`; torch only when a device is
checked), so `flow`, `methods` and `cli` parse the same way and fail with the same one line.
"""

from __future__ import annotations

from typing import Any

from angioseg.errors import InputError


def parse_spec(text: str, *, kind: str = "method") -> tuple[str, dict[str, Any]]:
    """Split ``name`` or ``name:key=value,key=value`` into (name, options).

    Keys may use ``-`` for ``_``. Values become bool (``true``/``false``), int or float where
    they read as one, else stay strings: ``seq-cenet:k=2,motion=none`` -> ("seq-cenet",
    {"k": 2, "motion": "none"}). `kind` names the thing in error messages ("method", "flow backend").
    """
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise InputError(f"{kind} spec {text!r} has no {kind} name")
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key.isidentifier():
            raise InputError(f"{kind} spec {text!r}: option {item!r} is not key=value")
        options[key] = option_value(value.strip())
    return name, options


def option_value(text: str) -> Any:
    """The Python value an option string stands for (see `parse_spec`)."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_device(device: Any, *, option: str = "--device") -> str:
    """Validate a torch device string, so a missing GPU is one line, not a traceback."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"{option} {device!r} is not a torch device (try cpu or cuda)") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"{option} {device}: no CUDA GPU is available on this machine")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{option} {device}: MPS is not available on this machine")
    return str(device)


def accepted_options(cls: type) -> tuple[list[str], bool]:
    """The keyword options `cls(...)` accepts: (names, open) where `open` is True when some
    constructor takes arbitrary keywords that go nowhere we can see.

    Follows the MRO while a constructor forwards ``**options`` to its parent, so a subclass
    that adds `k` and passes the rest on accepts `k` and every option of its parents.
    """
    import inspect

    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:
            break
        parameters = list(inspect.signature(init).parameters.values())[1:]  # without self
        for parameter in parameters:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY) and parameter.name not in names:
                names.append(parameter.name)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return names, False
    return names, True


def check_options(cls: type, options: dict[str, Any], *, kind: str, name: str) -> None:
    """InputError (one line) unless every key of `options` is a keyword option of `cls`'s
    constructor (`accepted_options`). Checked before the object is built, so a bug inside a
    constructor keeps its own traceback instead of being reported as a bad option."""
    accepted, open_ended = accepted_options(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown and not open_ended:
        plural = "s" if len(unknown) > 1 else ""
        raise InputError(f"{kind} {name!r} has no option{plural} {', '.join(unknown)}; its options: {', '.join(sorted(accepted))}")
