"""Propagation (one-shot video object segmentation): the `flow-propagate` baseline, the
`angioseg propagate` verb, and the evaluation protocols (prompt frame, scoring without the
prompt frame, seen / unseen objects), on tiny synthetic runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from angioseg.errors import InputError
from angioseg.eval.davis import davis_j_and_f
from angioseg.methods import Prompt, Segmentation, Segmenter, get
from angioseg.types import LabelMap, Video

from test_cli_segment import run_cli

TABLE = {0: "background", 1: "vessel", 2: "electrode"}


def translating_run(frames: int = 8, size: int = 80) -> tuple[Video, np.ndarray]:
    """A bright disk moving by (+2, +1) px and a dark bar moving by -2 px (across its length)
    per frame, on a flat background; labels 1 (disk) and 2 (bar)."""
    yy, xx = np.mgrid[0:size, 0:size]
    data = np.full((frames, size, size), 0.55, np.float32)
    labels = np.zeros((frames, size, size), np.uint8)
    for t in range(frames):
        disk = (xx - (20 + 2 * t)) ** 2 + (yy - (30 + t)) ** 2 <= 9**2
        bar = (np.abs(yy - (62 - 2 * t)) <= 2) & (xx >= 12) & (xx <= 60)
        data[t][disk], data[t][bar] = 0.9, 0.15
        labels[t][disk], labels[t][bar] = 1, 2
    return Video(data, fps=10), labels


# ---- flow-propagate ---------------------------------------------------------------------------
def test_flow_propagate_keeps_both_objects_forward_and_backward():
    video, labels = translating_run()
    middle = 4
    result = get("flow-propagate").segment(video, prompt=Prompt(middle, labels[middle], TABLE))
    assert np.array_equal(result.masks.labels[middle], labels[middle])  # the prompt frame is the prompt
    assert result.class_probabilities.shape == (8, 3, 80, 80)
    assert np.allclose(result.class_probabilities.sum(axis=1), 1.0, atol=1e-3)
    assert result.confidence.shape == (8,) and result.confidence[middle] == 1.0
    assert ((result.confidence > 0) & (result.confidence <= 1)).all()
    for frames in (range(0, middle), range(middle + 1, 8)):  # backward, forward
        for obj in (1, 2):
            per_frame = [davis_j_and_f(result.masks.labels[t], labels[t], objects=[obj]).j for t in frames]
            assert np.mean(per_frame) > 0.8 and min(per_frame) > 0.7, (obj, list(frames), per_frame)
    assert result.options["method"] == "flow-propagate" and result.options["flow"] == "dis"


def test_flow_propagate_takes_the_nearest_prompt_and_needs_one():
    video, labels = translating_run(frames=6, size=64)
    shifted = np.roll(labels[5], 1, axis=1)  # a prompt the flow could not produce: must be copied exactly
    prompts = [Prompt(0, labels[0], TABLE), Prompt(5, shifted, TABLE)]
    result = get("flow-propagate").segment(video, prompt=prompts)
    assert np.array_equal(result.masks.labels[0], labels[0]) and np.array_equal(result.masks.labels[5], shifted)
    assert result.confidence[0] == result.confidence[5] == 1.0
    with pytest.raises(InputError, match="needs a labelled frame"):
        get("flow-propagate").segment(video)
    with pytest.raises(InputError, match="dtype"):
        get("flow-propagate", dtype="float16")


def test_flow_propagate_chain_helpers():
    from angioseg.methods.flowprop import carry, nearest_prompt

    assert nearest_prompt(7, [1, 4]).tolist() == [0, 0, 0, 1, 1, 1, 1]  # frame 2 is nearer 1; ties -> earlier
    assert nearest_prompt(6, [1, 3]).tolist() == [0, 0, 0, 1, 1, 1]  # frame 2: a tie goes to the earlier prompt
    one_hot = np.zeros((2, 6, 6), np.float32)
    one_hot[0], one_hot[1, 2:4, 2:4], one_hot[0, 2:4, 2:4] = 1, 1, 0
    flow = np.zeros((6, 6, 2), np.float32)
    flow[..., 0] = -1.0  # every pixel samples its left neighbour: the square moves right by 1
    moved = carry(one_hot, flow)
    assert np.allclose(moved[1], np.roll(one_hot[1], 1, axis=1)) and np.allclose(moved.sum(axis=0), 1.0)


# ---- prompt frames ----------------------------------------------------------------------------
def stack_with_counts(counts: list[int], label: int = 1, size: int = 8) -> np.ndarray:
    labels = np.zeros((len(counts), size, size), np.uint8)
    for t, n in enumerate(counts):
        labels[t].flat[:n] = label
    return labels


def test_prompt_frame_peak_and_early_protocols():
    from angioseg.pipelines.propagation_eval import prompt_frame

    labels = stack_with_counts([0, 4, 5, 10, 10, 6])
    assert prompt_frame(labels, "peak") == 3  # two frames at the peak: the earlier
    assert prompt_frame(labels, "early") == 1  # 4 >= 0.4 * 10: the first frame reaching 40 %
    labels = stack_with_counts([0, 3, 5, 10, 6])
    assert prompt_frame(labels, "early") == 2  # 3 < 4
    # label 1 decides even where other labels are larger
    labels[0, 2:, :] = 2
    assert prompt_frame(labels, "peak") == 3
    # no label 1 anywhere: every foreground label counts
    fallback = stack_with_counts([2, 9, 3], label=2)
    fallback[2, 6:, :] = 3  # frame 2: 3 pixels of label 2 + 16 of label 3 = 19; 9 >= 0.4 * 19
    assert prompt_frame(fallback, "peak") == 2 and prompt_frame(fallback, "early") == 1
    with pytest.raises(InputError, match="no object"):
        prompt_frame(np.zeros((3, 4, 4), np.uint8), "peak")
    with pytest.raises(InputError, match="protocol"):
        prompt_frame(labels, "middle")


# ---- scoring ------------------------------------------------------------------------------------
def reference_case() -> LabelMap:
    """3 frames of 16 x 16: object 1 (vessel) a 4 x 4 square, object 2 (electrode) a 2 x 2 one."""
    labels = np.zeros((3, 16, 16), np.uint8)
    labels[:, 4:8, 4:8] = 1
    labels[:, 12:14, 12:14] = 2
    return LabelMap(labels, TABLE)


def test_scoring_leaves_out_the_prompt_frame_and_splits_seen_and_unseen():
    from angioseg.pipelines.propagation_eval import score_propagation

    reference = reference_case()
    predicted = reference.labels.copy()
    predicted[1] = 0  # wrong only on the prompt frame
    predicted[2, 6:8, 4:8] = 0  # frame 2: the upper half of the vessel square only
    scores = score_propagation(predicted, reference, prompt_frames=1, unseen_labels={"electrode"})
    # vessel: J = mean(1, 8/16) = 0.75; F = mean(1, 0.8): at frame 2 the tolerance is 1 px
    # (ceil(0.008 * 22.6)), the 8 predicted boundary pixels all lie within 1 px of the reference's
    # (precision 1) and 8 of its 12 within 1 px of them (recall 2/3): F = 2 * (2/3) / (5/3) = 0.8.
    assert scores["objects"]["vessel"] == pytest.approx({"j": 0.75, "f": 0.9, "jf": 0.825})
    assert scores["objects"]["electrode"] == pytest.approx({"j": 1.0, "f": 1.0, "jf": 1.0})
    assert scores["j"] == pytest.approx(0.875) and scores["f"] == pytest.approx(0.95)
    assert scores["jf"] == pytest.approx(0.9125)
    assert scores["seen"] == pytest.approx({"j": 0.75, "f": 0.9, "jf": 0.825})
    assert scores["unseen"] == pytest.approx({"j": 1.0, "f": 1.0, "jf": 1.0})
    assert scores["frames_scored"] == 2 and scores["prompt_frames"] == [1]
    # the same prediction scored with frame 0 as the prompt counts the empty frame 1: J = 0 there
    other = score_propagation(predicted, reference, prompt_frames=0)
    assert other["objects"]["vessel"]["j"] == pytest.approx(0.25) and other["unseen"] is None
    # perfect only on the prompt frame: nothing is credited
    only_prompt = np.zeros_like(reference.labels)
    only_prompt[1] = reference.labels[1]
    assert score_propagation(only_prompt, reference, prompt_frames=1)["jf"] == 0.0


class Oracle(Segmenter):
    """Answers the reference everywhere except at the prompt frame, which it leaves empty."""

    name = "oracle"
    needs_prompt = True

    def __init__(self, reference: LabelMap) -> None:
        super().__init__()
        self.reference = reference

    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        labels = self.reference.labels.copy()
        labels[prompts[0].frame] = 0
        probabilities = np.stack([(labels == k).astype(np.float32) for k in sorted(TABLE)], axis=1)
        return Segmentation(LabelMap(labels, TABLE), probabilities)


def davis_data(root: Path, *, cases: int = 2, frames: int = 6, size: int = 64) -> tuple[Path, list[LabelMap]]:
    """A DAVIS-style folder of translating runs whose vessel (the disk) grows over the first frames."""
    from angioseg.data.davis import DavisWriter

    references = []
    with DavisWriter(root, label_table=TABLE) as writer:
        for index in range(cases):
            video, labels = translating_run(frames=frames, size=size)
            labels = labels.copy()
            for t in range(min(3, frames)):  # filling: part of the disk shown early on
                labels[t][(labels[t] == 1) & (np.arange(size)[None, :] > 16 + 2 * t + 3 * t)] = 0
            references.append(LabelMap(labels, TABLE))
            writer.add(f"case{index}", video, references[-1])
    return root, references


def test_evaluate_propagation_scores_all_frames_but_the_prompt(tmp_path, monkeypatch):
    from angioseg.pipelines import propagation_eval, scoring

    data, references = davis_data(tmp_path / "data", cases=1)
    monkeypatch.setattr(propagation_eval, "check_propagation_methods", lambda methods: None)
    monkeypatch.setattr(scoring, "segmenters_for", lambda methods, device: {"oracle": Oracle(references[0])})
    report = propagation_eval.evaluate_propagation(["oracle"], data, protocol="early", unseen_labels=["electrode"])
    entry = report["methods"]["oracle"]
    case = entry["cases"]["case0"]
    assert report["prompt_frames"]["case0"] == propagation_eval.prompt_frame(references[0].labels, "early")
    assert case["jf"] == 1.0 and case["frames_scored"] == 5  # wrong only on the prompt frame: perfect
    assert entry["summary"]["seen_jf"]["mean"] == 1.0 and entry["summary"]["unseen_jf"]["mean"] == 1.0
    assert set(entry["objects"]) == {"vessel", "electrode"} and entry["frames"] == 6


# ---- angioseg propagate ----------------------------------------------------------------------
@pytest.fixture
def run_files(tmp_path) -> tuple[Path, np.ndarray, Path]:
    from angioseg.io import write_video_npz
    from angioseg.io.labels import palette_image

    video, labels = translating_run(frames=6, size=64)
    run = write_video_npz(video, tmp_path / "run.npz")
    mask = tmp_path / "frame3.png"
    palette_image(labels[3]).save(mask)
    return run, labels, mask


def test_propagate_writes_a_multi_object_bundle(run_files, tmp_path, capsys):
    from angioseg.io import read_label_image

    run, labels, mask = run_files
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "propagate", run, "--mask", mask, "--frame", 3, "-o", out, "--method", "flow-propagate")
    assert code == 0, err
    assert np.array_equal(read_label_image(out / "masks" / "00003.png"), labels[3])  # the PNG round trip
    with np.load(out / "masks.npz") as data:
        assert np.array_equal(data["labels"][3], labels[3]) and data["labels"].shape == (6, 64, 64)
    report = json.loads((out / "report.json").read_text())
    assert report["label_table"] == {"0": "background", "1": "object-1", "2": "object-2"}
    assert len(report["confidence"]) == 6 and report["confidence"][3] == 1.0
    assert report["prompt_frames"] == [3] and report["prompt_masks"] == ["frame3.png"]
    assert report["method"] == "flow-propagate" and "object-2_px" in report["per_frame"][0]


def test_propagate_two_labelled_frames_with_names(run_files, tmp_path, capsys):
    from angioseg.io.labels import palette_image

    run, labels, mask = run_files
    second = tmp_path / "frame0.png"
    palette_image(labels[0]).save(second)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "propagate", run, "--mask", mask, "--frame", 3, "--mask", second, "--frame", 0, "-o", out,
                           "--method", "flow-propagate", "--labels", '{"1": "vessel", "2": "catheter"}', "--threads", 1)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["prompt_frames"] == [0, 3] and report["prompt_masks"] == ["frame0.png", "frame3.png"]
    assert report["label_table"] == {"0": "background", "1": "vessel", "2": "catheter"}
    with np.load(out / "masks.npz") as data:
        assert np.array_equal(data["labels"][[0, 3]], labels[[0, 3]])


def test_propagate_bad_inputs_are_one_line_and_leave_nothing(run_files, tmp_path, capsys):
    from PIL import Image

    run, labels, mask = run_files
    small = tmp_path / "small.png"
    Image.fromarray(labels[3][:40]).save(small)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(empty)
    out = tmp_path / "out"
    method = ("--method", "flow-propagate")
    cases = [
        (("--mask", small, "--frame", 3, *method), "40 pixels"),
        (("--mask", mask, "--frame", 6, *method), "out of range"),
        (("--mask", mask, "--mask", mask, "--frame", 3, *method), "2 masks but 1 frames"),
        (("--mask", empty, "--frame", 1, *method), "empty"),
        (("--mask", mask, "--frame", 3, "--labels", '{"1": "vessel"}', *method), "[2]"),
        (("--mask", mask, "--frame", 3, "--method", "frangi"), "does not propagate"),
        (("--mask", mask, "--frame", -1, *method), "non-negative"),
    ]
    for arguments, fragment in cases:
        code, _, err = run_cli(capsys, "propagate", run, "-o", out, *arguments)
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, (arguments, err)
        assert not out.exists(), arguments


# ---- angioseg evaluate --protocol -----------------------------------------------------------
def test_evaluate_with_a_protocol_writes_the_propagation_table(tmp_path, capsys):
    from angioseg.pipelines.propagation_eval import prompt_frame

    data, references = davis_data(tmp_path / "data")
    code, stdout, err = run_cli(capsys, "evaluate", "--methods", "flow-propagate,flow-propagate:flow=dis:preset=fast",
                                "--data", data, "-o", tmp_path / "r", "--protocol", "early", "--unseen", "electrode")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["kind"] == "propagation" and report["protocol"] == "early" and report["unseen_labels"] == ["electrode"]
    assert report["prompt_frames"] == {f"case{i}": prompt_frame(r.labels, "early") for i, r in enumerate(references)}
    assert set(report["methods"]) == {"flow-propagate", "flow-propagate:flow=dis:preset=fast"}
    entry = report["methods"]["flow-propagate"]
    for case in entry["cases"].values():
        assert case["frames_scored"] == 5 and set(case["objects"]) == {"vessel", "electrode"}
        assert case["jf"] == pytest.approx((case["j"] + case["f"]) / 2)
        assert case["seen"]["jf"] == pytest.approx(case["objects"]["vessel"]["jf"])
        assert case["unseen"]["jf"] == pytest.approx(case["objects"]["electrode"]["jf"])
    assert entry["frames_per_second"] > 0 and entry["summary"]["unseen_jf"]["mean"] > 0.8
    table = (tmp_path / "r.md").read_text()
    assert "seen_jf" in table and "vessel J&F" in table and "protocol: early" in table and "nan" not in table.lower()


def test_evaluate_scores_plain_methods_on_the_objects_they_name(tmp_path, capsys):
    data, _ = davis_data(tmp_path / "data", cases=1)
    code, _, err = run_cli(capsys, "evaluate", "--method", "frangi", "--data", data, "-o", tmp_path / "r", "--protocol", "peak")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "frangi" in err
    assert not (tmp_path / "r.json").exists()
    code, _, _ = run_cli(capsys, "evaluate", "--method", "flow-propagate", "--method", "frangi", "--data", data, "-o", tmp_path / "r")
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    plain_objects = set(report["methods"]["frangi"]["objects"])
    assert plain_objects <= set(report["methods"]["flow-propagate"]["objects"])
    assert plain_objects <= {"vessel"}


def test_labels_by_name_renumbers_and_keeps_named_objects():
    from angioseg.pipelines.propagation_eval import labels_by_name

    predicted = LabelMap(np.array([[[0, 1, 2]]], np.uint8), {0: "background", 1: "vessel", 2: "catheter"})
    out, named = labels_by_name(predicted, {0: "background", 1: "wire", 5: "vessel"}, [1, 5])
    assert out.tolist() == [[[0, 5, 0]]] and named == [5]


def test_evaluate_method_list_splits_specs():
    from angioseg.cli.evaluate_command import method_list

    assert method_list("flow-propagate,fsvos") == ["flow-propagate", "fsvos"]
    assert method_list("frangi,seq-cenet:k=2,motion=none,sato") == ["frangi", "seq-cenet:k=2,motion=none", "sato"]
