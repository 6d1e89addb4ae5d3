"""The files a result can be downloaded as, written once per result into its folder.

The bundle of `angioseg segment` (`angioseg.pipelines.bundle.write_bundle_contents`: PNG
masks, masks.npz, probabilities.npz, overlay video, report.json) is written on the first
download of a result, atomically; the PNG zip and the whole-bundle zip are made from it. A
DICOM Segmentation object comes from `angioseg.pipelines.dicom_seg.export_dicom_seg`, for
runs read from DICOM.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from angioseg.errors import InputError
from angioseg.serve.workspace import Result, Run

#: The names a client asks for, and the media type of each.
KINDS = {
    "masks.zip": "application/zip",
    "masks.npz": "application/octet-stream",
    "probabilities.npz": "application/octet-stream",
    "overlay": "video/mp4",
    "report.json": "application/json",
    "bundle.zip": "application/zip",
    "seg.dcm": "application/dicom",
}


class DicomSegUnavailable(Exception):
    """This install has no DICOM SEG exporter."""


def download(run: Run, result: Result, kind: str, *, fractional: bool = False) -> tuple[Path, str]:
    """(path, media type) of the file `kind` (a key of `KINDS`) for `result`."""
    if kind not in KINDS:
        raise KeyError(f"no download named {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "seg.dcm":
        return dicom_seg(run, result, fractional=fractional), KINDS[kind]
    folder = bundle(run, result)
    if kind == "overlay":
        path = next(folder.glob("overlay.*"))
        return path, "image/gif" if path.suffix == ".gif" else "video/mp4"
    if kind == "masks.zip":
        return _zipped(folder / "masks", result.folder / "masks.zip", result, prefix="masks"), KINDS[kind]
    if kind == "bundle.zip":
        return _zipped(folder, result.folder / "bundle.zip", result, prefix=""), KINDS[kind]
    return folder / kind, KINDS[kind]


def bundle(run: Run, result: Result) -> Path:
    """The result's bundle folder, written on the first call."""
    from angioseg.io.atomic import atomic_directory
    from angioseg.pipelines.bundle import is_bundle, write_bundle_contents

    target = result.folder / "bundle"
    with result.lock:
        if not (target / "report.json").is_file():
            with atomic_directory(target, replaceable=is_bundle) as tmp:
                write_bundle_contents(tmp, run.video, result.segmentation, source=run.name, extra=result.extra or None)
    return target


def _zipped(folder: Path, target: Path, result: Result, *, prefix: str) -> Path:
    """A zip of every file under `folder` (names under `prefix`), written once, atomically."""
    from angioseg.io.atomic import atomic_file

    with result.lock:
        if not target.is_file():
            with atomic_file(target) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    name = path.relative_to(folder).as_posix()
                    archive.write(path, f"{prefix}/{name}" if prefix else name)
    return target


def dicom_seg(run: Run, result: Result, *, fractional: bool) -> Path:
    """A DICOM SEG of the result's masks (or probabilities, `fractional`), written once;
    InputError for a run that was not read from DICOM."""
    try:
        from angioseg.pipelines.dicom_seg import export_dicom_seg
    except ImportError:
        raise DicomSegUnavailable("DICOM SEG export is not available in this install") from None
    target = result.folder / ("seg-fractional.dcm" if fractional else "seg.dcm")
    segmentation = result.segmentation
    with result.lock:
        if not target.is_file():
            probabilities = segmentation.class_probabilities if fractional else None
            written = export_dicom_seg(run.source, segmentation.masks.labels, segmentation.label_table, target,
                                       probabilities=probabilities, fractional=fractional)
            if Path(written) != target:
                Path(written).replace(target)
    if not target.is_file():
        raise InputError("the DICOM SEG export wrote no file")
    return target
