"""The library layer (`angioseg.pipelines`) and the method contract: bundles round trip,
streaming `step()` equals `segment()`, the temporal filter keeps a method's threshold and its
labels, options are checked before construction, and the layers import only downward."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from angioseg.cli.main import main
from angioseg.errors import InputError
from angioseg.methods import FrameResult, Prompt, Segmentation, StreamingSegmenter, get
from angioseg.pipelines import (
    LocalExecutor,
    ProcessExecutor,
    apply_temporal_filter,
    read_bundle,
    segment_input,
    write_bundle,
)
from angioseg.types import DEFAULT_LABELS, LabelMap, Video, vessel_labels

PACKAGE = Path(__file__).resolve().parents[1] / "angioseg"


def small_run(frames: int = 5, size: int = 48) -> Video:
    data = np.full((frames, size, size), 0.8, np.float32)
    for t in range(frames):
        data[t, 20 + t % 2 : 24 + t % 2, 4 : size - 4] = 0.3
    return Video(data, fps=10)


# ---- the layers ---------------------------------------------------------------------------
def imported_modules(path: Path) -> set[str]:
    """Every angioseg module `path` imports (at any depth of the file)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("angioseg"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("angioseg"))
    return names


def method_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "methods" and parts[2] not in ("base", "__init__") else None


def test_no_method_imports_another_and_eval_does_not_import_the_generators():
    for path in (PACKAGE / "methods").rglob("*.py"):
        own = method_package("angioseg." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for module in imported_modules(path):
            other = method_package(module)
            assert other is None or other == own, f"{path.relative_to(PACKAGE)} imports {module}"
    for path in (PACKAGE / "eval").rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith(("angioseg.data.phantom", "angioseg.data.pseudo_video")), f"{path.name} imports {module}"


def test_the_cli_only_parses_and_calls():
    """No scoring, bundle writing or report rendering in angioseg/cli: no such functions and
    no json / numpy / atomic writers there, and no verb calls another verb."""
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert not functions & {"score", "evaluate_methods", "markdown_report", "write_segmentation", "evaluate_case"}, path.name
        modules = imported_modules(path)
        assert not any(m.startswith(("angioseg.io.atomic", "angioseg.eval")) for m in modules), (path.name, modules)
        assert not any(m.startswith("angioseg.cli.") and m.endswith("_command") and m != "angioseg.cli.common" for m in modules), path.name
        text = path.read_text()
        assert "import numpy" not in text and "json.dump(" not in text, path.name


def test_one_definition_of_the_vessel_label_table():
    hits = [p for p in PACKAGE.rglob("*.py") if '{0: "background", 1: "vessel"}' in p.read_text()]
    assert [p.name for p in hits] == ["types.py"]


# ---- bundles ---------------------------------------------------------------------------------
def test_bundle_round_trip_keeps_masks_probabilities_and_report(tmp_path):
    video = small_run()
    result = get("frangi").segment(video)
    path = write_bundle(tmp_path / "seg", video, result, source="run.dcm")
    bundle = read_bundle(path)
    assert np.array_equal(bundle.masks.labels, result.masks.labels) and bundle.masks.label_table == vessel_labels()
    assert bundle.class_probabilities.shape == (5, 2, 48, 48)
    assert np.allclose(bundle.class_probabilities[:, 1], result.probabilities, atol=1e-3)  # stored as float16
    again = bundle.segmentation()
    assert again.threshold == pytest.approx(result.threshold) and np.array_equal(again.masks.labels, result.masks.labels)
    assert bundle.report["format"] == "angioseg-segmentation" and bundle.report["input"]["name"] == "run.dcm"
    with pytest.raises(InputError, match="masks.npz is missing"):
        (path / "masks.npz").unlink()
        read_bundle(path)


def test_multi_label_bundle_keeps_every_label(tmp_path):
    video = small_run(frames=3)
    labels = np.zeros((3, 48, 48), np.uint8)
    labels[:, 20:24, 4:44] = 1
    labels[:, 30:33, 10:20] = 2
    probabilities = np.stack([(labels == k).astype(np.float32) for k in (0, 1, 2)], axis=1)
    result = Segmentation(LabelMap(labels, dict(DEFAULT_LABELS)), probabilities)
    bundle = read_bundle(write_bundle(tmp_path / "seg", video, result, source="x"))
    assert np.array_equal(bundle.masks.labels, labels) and bundle.class_probabilities.shape == (3, 3, 48, 48)
    report = json.loads((tmp_path / "seg" / "report.json").read_text())
    assert report["per_frame"][0]["catheter_px"] == 30 and report["per_frame"][0]["vessel_px"] == 160


# ---- the method contract ---------------------------------------------------------------------
def test_segmentation_checks_shape_range_finiteness_and_sums():
    labels = LabelMap(np.zeros((2, 4, 4), np.uint8), vessel_labels())
    with pytest.raises(ValueError, match="do not match"):
        Segmentation(labels, np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Segmentation(labels, np.full((2, 4, 4), 1.5, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        Segmentation(labels, np.full((2, 4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="sum to 1"):
        Segmentation(labels, np.full((2, 2, 4, 4), 0.2, np.float32))
    with pytest.raises(ValueError, match="two-label table"):
        Segmentation(LabelMap(np.zeros((2, 4, 4), np.uint8)), np.zeros((2, 4, 4), np.float32))
    binary = Segmentation(labels, np.full((2, 4, 4), 0.25, np.float32))
    assert binary.class_probabilities.shape == (2, 2, 4, 4) and np.allclose(binary.class_probabilities[:, 0], 0.75)


def test_prompt_is_checked_against_the_run():
    video = small_run(frames=3)
    prompt = Prompt(1, np.zeros((48, 48), np.uint8))
    prompt.check_matches(video)
    with pytest.raises(InputError, match="run has 3 frames"):
        Prompt(3, np.zeros((48, 48), np.uint8)).check_matches(video)
    with pytest.raises(InputError, match="label map"):
        Prompt(0, np.zeros((40, 48), np.uint8)).check_matches(video)
    with pytest.raises(InputError, match="does not name"):
        Prompt(0, np.full((48, 48), 3, np.uint8))
    with pytest.raises(InputError, match="frame index"):
        Prompt(-1, np.zeros((48, 48), np.uint8))


def test_bad_option_is_one_line_and_a_constructor_bug_keeps_its_traceback(monkeypatch):
    with pytest.raises(InputError, match="method 'cenet' has no option wieghts"):
        get("cenet", wieghts="x.safetensors")
    from angioseg.methods.vesselness import FrangiVesselness

    def broken(self, **options):
        raise TypeError("a bug inside the constructor")

    monkeypatch.setattr(FrangiVesselness, "__init__", broken)
    with pytest.raises(TypeError, match="a bug inside the constructor"):  # not reported as a bad option
        get("frangi")
    from angioseg.flow import get_flow_backend

    with pytest.raises(InputError, match="flow backend 'dis' has no option iterations"):
        get_flow_backend("dis", iterations=3)


def test_streaming_step_by_step_equals_segment():
    """CE-Net driven frame by frame with step() gives the masks of segment() on the whole run
    (which batches frames through the same path)."""
    from angioseg.data.phantom import PhantomParams, generate_phantom

    video = generate_phantom(PhantomParams(size=128, frames=6), seed=2).video
    segmenter = get("cenet", batch=4)
    assert isinstance(segmenter, StreamingSegmenter)
    whole = segmenter.segment(video)
    segmenter.reset(height=128, width=128, label_table=vessel_labels(), fps=video.fps)
    steps = [segmenter.step(frame) for frame in video.frames]
    assert all(isinstance(s, FrameResult) and s.probabilities.shape == (2, 128, 128) for s in steps)
    assert np.array_equal(np.stack([s.labels for s in steps]), whole.masks.labels)
    assert np.allclose(np.stack([s.probabilities[1] for s in steps]), whole.probabilities, atol=1e-4)  # batch of 1 vs 4
    assert whole.masks.labels.any()


def test_a_streaming_method_takes_a_labelled_frame_as_its_answer():
    video = small_run(frames=4)
    given = np.zeros((48, 48), np.uint8)
    given[5:10, 5:10] = 1
    result = get("cenet").segment(video, prompt=Prompt(2, given))
    assert np.array_equal(result.masks.labels[2], given)
    segmenter = get("cenet")
    with pytest.raises(InputError, match="reset"):
        segmenter.step(video.frames[0])


class _Echo(StreamingSegmenter):
    """A streaming method that labels pixels darker than 0.5 (for the contract's tests)."""

    name = "echo-test"

    def _reset(self, *, height, width, label_table, fps):
        self.seen = 0

    def _step(self, frame, *, mask):
        self.seen += 1
        p = (frame < 0.5).astype(np.float32)
        return FrameResult((p >= 0.5).astype(np.uint8), np.stack([1 - p, p]))


def test_segment_of_a_streaming_method_is_reset_plus_steps():
    video = small_run(frames=4)
    method = _Echo()
    result = method.segment(video)
    assert method.seen == 4 and result.masks.labels.shape == (4, 48, 48)
    assert np.array_equal(result.masks.labels, (video.frames < 0.5).astype(np.uint8))


# ---- the temporal filter of `segment` ---------------------------------------------------------
def test_temporal_filter_uses_the_methods_threshold_and_keeps_every_label():
    video = small_run(frames=4)
    p = np.full((4, 48, 48), 0.35, np.float32)  # above DeNVeR's 0.3, below 0.5
    low = Segmentation(LabelMap((p >= 0.3).astype(np.uint8), vessel_labels()), p, threshold=0.3)
    filtered = apply_temporal_filter(low, video, radius=1)
    assert filtered.masks.labels.all() and filtered.threshold == 0.3  # a fixed 0.5 would empty it
    labels = np.zeros((4, 48, 48), np.uint8)
    labels[:, :, 24:] = 2
    classes = np.stack([(labels == k).astype(np.float32) for k in (0, 1, 2)], axis=1)
    multi = Segmentation(LabelMap(labels, dict(DEFAULT_LABELS)), classes)
    kept = apply_temporal_filter(multi, video, radius=2)
    assert np.array_equal(kept.masks.labels, labels) and kept.class_probabilities.shape == (4, 3, 48, 48)


def test_segment_temporal_filter_with_denver_keeps_its_threshold(tmp_path, capsys):
    from angioseg.data.phantom import PhantomParams, generate_phantom
    from angioseg.io import write_dicom

    run = generate_phantom(PhantomParams(size=48, frames=6), seed=1)
    write_dicom(run.video, tmp_path / "run.dcm")
    out = tmp_path / "seg"
    argv = ["segment", str(tmp_path / "run.dcm"), "-o", str(out), "--method", "denver:iterations=2,resolution=48,min_component=0",
            "--temporal-filter", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    bundle = read_bundle(out)
    threshold = bundle.report["threshold"]  # chosen per run by denver's default rule
    assert 0 < threshold < 1 and threshold != pytest.approx(0.5) and bundle.report["options"]["temporal_filter_k"] == 1
    foreground = bundle.class_probabilities[:, 1]
    decided = np.abs(foreground - threshold) > 2e-3  # float16 storage blurs pixels at the threshold
    assert np.array_equal(bundle.masks.labels[decided] == 1, foreground[decided] >= threshold)


# ---- executors, inputs, weights ---------------------------------------------------------------
def _square(x: int) -> int:
    return x * x


def test_executors_return_results_in_task_order():
    tasks = [3, 1, 2, 5]
    assert list(LocalExecutor().map(_square, tasks)) == [9, 1, 4, 25]
    assert list(ProcessExecutor(2, threads=1).map(_square, tasks)) == [9, 1, 4, 25]
    with pytest.raises(InputError, match="jobs"):
        ProcessExecutor(0)


def test_segment_input_reads_and_segments(tmp_path):
    np.save(tmp_path / "run.npy", small_run().frames)
    video, result = segment_input(tmp_path / "run.npy", method="frangi")
    assert video.num_frames == 5 and result.masks.labels.shape == (5, 48, 48) and result.options["method"] == "frangi"
    with pytest.raises(InputError, match="unknown method"):
        segment_input(tmp_path / "run.npy", method="nope")


def test_shipped_weights_are_found_inside_the_installed_package():
    import importlib.resources

    from angioseg.methods.supervised.weights import shipped_weights, weights_dir

    assert weights_dir() == Path(str(importlib.resources.files("angioseg") / "weights"))
    assert shipped_weights("cenet").parent == weights_dir() and shipped_weights("cenet").is_file()
    with pytest.raises(InputError, match="no shipped weights"):
        shipped_weights("no-such-model")
