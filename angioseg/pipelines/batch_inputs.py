"""What a batch processes: discovering runs in the inputs, their content hashes, their output names.

A batch INPUT is a file, a folder or a list file (``@list.txt``: one path per line, blank lines
and lines starting with '#' skipped, relative paths taken from the list file's folder). A file
given by name is one run whatever it holds (`angioseg.io.read_video` decides). A folder is walked
recursively, hidden entries skipped:

- video files, multi-frame DICOM files and npy/npz arrays are one run each;
- the image files directly in a folder make that folder one run (an image sequence);
- the single-frame DICOM files directly in a folder make that folder one run (a series);
- a file whose name claims one of these kinds (.dcm, .npy, .png, .mp4...) but whose bytes are
  none of them is a run of its own too, so that it fails with its reader's one-line error and
  shows in the summary as failed instead of vanishing from an archive;
- anything else is skipped and reported (`Discovery.skipped`).

Every run gets a relative name (its path relative to the common folder of all inputs), a
content hash (SHA-256 of the file's bytes; for a folder run, of its files' sorted names and
bytes) and an output folder name made from the relative name and a short hash of it. Names
never come from file contents: no DICOM header value (patient name, ID...) can end up in one.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from angioseg.errors import InputError

if TYPE_CHECKING:
    from angioseg.types import Video

#: File suffixes taken as video files inside a folder (FFmpeg decodes them).
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".m4v", ".gif"})
#: Run kinds: a file read by `read_video`, an image folder, a folder of single-frame DICOM files.
KINDS = ("file", "image-folder", "dicom-series")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_CHARS = 80
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RunInput:
    """One run of a batch: where it is, how to read it, and its stable names."""

    relative: str
    path: Path
    kind: str
    files: tuple[Path, ...] = ()
    dicom: bool = False

    @property
    def output_name(self) -> str:
        """The run's output folder name (`output_name`)."""
        return output_name(self.relative)


@dataclass
class Discovery:
    """The runs found in the inputs (sorted by relative name), what was skipped (with why), and
    the inputs as given (list files expanded, resolved)."""

    runs: list[RunInput] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)


def output_name(relative: str) -> str:
    """A safe folder name for a run: its relative path with every unsafe character run turned
    into '_' (folders joined by '__', cut to 80 characters) and 10 hex digits of its SHA-256."""
    stem = "__".join(_UNSAFE.sub("_", part).strip("._") or "_" for part in relative.split("/"))
    digest = hashlib.sha256(relative.encode("utf-8")).hexdigest()[:10]
    return f"{stem[:_NAME_CHARS]}-{digest}"


def content_hash(run: RunInput) -> str:
    """SHA-256 of a run's content: the file's bytes, or for a folder run the sorted names and
    bytes of its files (InputError naming the file when one cannot be read)."""
    digest = hashlib.sha256()
    if run.kind == "file":
        _hash_file(digest, run.path)
        return digest.hexdigest()
    for file in sorted(run.files, key=lambda p: p.name):
        name = file.name.encode("utf-8")
        digest.update(len(name).to_bytes(8, "little") + name)
        _hash_file(digest, file)
    return digest.hexdigest()


def _hash_file(digest: "hashlib._Hash", path: Path) -> None:
    """Feed the file's size and bytes into `digest`."""
    try:
        with open(path, "rb") as handle:
            digest.update(os.fstat(handle.fileno()).st_size.to_bytes(8, "little"))
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as error:
        raise InputError(f"{path} cannot be read: {error.strerror or error}") from None


def expand_list_files(inputs: Sequence[str]) -> list[Path]:
    """The inputs with every ``@list.txt`` replaced by the paths it lists (InputError for a
    missing input or list file, or an empty result)."""
    paths: list[Path] = []
    for given in inputs:
        if given.startswith("@"):
            paths.extend(_read_list_file(Path(given[1:])))
        else:
            paths.append(Path(given))
    if not paths:
        raise InputError("no inputs given: name files, folders or @list.txt files")
    for path in paths:
        if not path.exists():
            raise InputError(f"input {path} does not exist")
    return paths


def _read_list_file(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"list file {path} cannot be read: {getattr(error, 'strerror', None) or error}") from None
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return [p if p.is_absolute() else path.parent / p for p in map(Path, entries)]


def discover(inputs: Sequence[str]) -> Discovery:
    """Find the runs in `inputs` (files, folders, ``@list.txt``); see the module docstring."""
    paths = [p.resolve() for p in expand_list_files(inputs)]
    base = Path(os.path.commonpath([p.parent for p in paths]))
    found = Discovery(roots=paths)
    for path in paths:
        if path.is_dir():
            _walk(path, base, found)
        else:
            dicom = _file_kind(path) in ("dicom-single", "dicom-multi")
            found.runs.append(RunInput(_relative(path, base), path, "file", dicom=dicom))
    unique = {run.relative: run for run in found.runs}
    found.runs = sorted(unique.values(), key=lambda run: run.relative)
    if not found.runs:
        raise InputError(f"no runs found in {', '.join(inputs)} (videos, DICOM, image folders, npy/npz)")
    return found


def _relative(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix() or path.name


def _walk(root: Path, base: Path, found: Discovery) -> None:
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        files = [Path(folder) / n for n in sorted(names) if not n.startswith(".") and (Path(folder) / n).is_file()]
        _classify_folder(Path(folder), files, base, found)


def _classify_folder(folder: Path, files: Iterable[Path], base: Path, found: Discovery) -> None:
    """Add the runs among one folder's direct files to `found`."""
    from angioseg.io.images import IMAGE_SUFFIXES

    images, series = [], []
    for file in files:
        kind = _file_kind(file)
        if kind == "image" and file.suffix.lower() in IMAGE_SUFFIXES:
            images.append(file)
        elif kind == "dicom-single":
            series.append(file)
        elif kind in ("dicom-multi", "array", "video"):
            found.runs.append(RunInput(_relative(file, base), file, "file", dicom=kind == "dicom-multi"))
        elif kind is None and file.suffix.lower() in _claimed_suffixes():
            found.runs.append(RunInput(_relative(file, base), file, "file"))  # unreadable: fails as a run
        else:
            found.skipped.append((_relative(file, base), "not a video, DICOM, image or npy/npz file"))
    relative = _relative(folder, base)
    if images:
        found.runs.append(RunInput(relative, folder, "image-folder", tuple(images)))
        found.skipped.extend((_relative(f, base), "a single-frame DICOM beside images (the images make the run)")
                             for f in series)
    elif series:
        found.runs.append(RunInput(relative, folder, "dicom-series", tuple(series), dicom=True))


def _claimed_suffixes() -> frozenset[str]:
    """File name suffixes that say "this is a run": DICOM, arrays, images and video files."""
    from angioseg.io.images import IMAGE_SUFFIXES

    return frozenset({".dcm", ".dicom", ".dic", ".ima", ".npy", ".npz", *IMAGE_SUFFIXES, *VIDEO_SUFFIXES})


def _file_kind(path: Path) -> str | None:
    """'image', 'array', 'dicom-single', 'dicom-multi', 'video' or None (not an input)."""
    from angioseg.io.detect import sniff

    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return None
    kind = sniff(head)
    if kind in ("npy", "npz"):
        return "array"
    if kind == "image":
        return "image"
    frames = _dicom_frames(path) if kind == "dicom" or path.suffix.lower() in (".dcm", ".dicom", ".dic", ".ima") else None
    if frames is not None:
        return "dicom-multi" if frames > 1 else "dicom-single"
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else None


def _dicom_frames(path: Path) -> int | None:
    """Number of frames a DICOM file declares (1 when it says none), None if not DICOM."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["NumberOfFrames", "SOPClassUID"])
    except Exception:  # noqa: BLE001 - any parse failure means "not a DICOM file we can classify"
        return None
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def read_run(run: RunInput) -> Video:
    """Read a run into a `Video`: `read_video` for a file or image folder, the listed files for a
    DICOM series (so multi-frame files beside it, runs of their own, are left out)."""
    from angioseg.io import read_video
    from angioseg.io.dicom import read_dicom_folder

    if run.kind == "dicom-series":
        return read_dicom_folder(run.path, list(run.files))
    return read_video(run.path)


__all__ = ["Discovery", "KINDS", "RunInput", "VIDEO_SUFFIXES", "content_hash", "discover", "expand_list_files",
           "output_name", "read_run"]
