import numpy as np
import pytest

from angioseg import InputError, LabelMap, Video
from angioseg.types import scrub_metadata


def test_video_accepts_2d_frame_and_reports_shape():
    video = Video(np.zeros((4, 5), np.float64), fps=15)
    assert video.shape == (1, 4, 5)
    assert video.frames.dtype == np.float32
    assert video.fps == 15.0


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((2, 3, 4, 5), np.float32), "(T, H, W)"),
        (np.zeros((0, 3, 4), np.float32), "non-empty"),
        (np.zeros((1, 3, 4), np.uint8), "floating point"),
        (np.full((1, 3, 4), 1.5, np.float32), "[0, 1]"),
        (np.full((1, 3, 4), np.nan, np.float32), "NaN"),
    ],
)
def test_video_rejects_bad_frames(frames, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        Video(frames)


def test_video_rejects_bad_fps_and_spacing():
    with pytest.raises(InputError, match="fps"):
        Video(np.zeros((1, 2, 2), np.float32), fps=0)
    with pytest.raises(InputError, match="pixel spacing"):
        Video(np.zeros((1, 2, 2), np.float32), pixel_spacing=(0.2, -1))


def test_metadata_never_keeps_patient_identifiers():
    metadata = {
        "PatientName": "DOE^JOHN",
        "patient_id": "123",
        "Patient's Birth Date": "19700101",
        "AccessionNumber": "A1",
        "InstitutionName": "Hospital",
        "modality": "XA",
        "bit_depth": 12,
    }
    assert scrub_metadata(metadata) == {"modality": "XA", "bit_depth": 12}
    video = Video(np.zeros((1, 2, 2), np.float32), metadata=metadata)
    assert set(video.metadata) == {"modality", "bit_depth"}


def test_label_map_validates_table_and_shape():
    labels = np.zeros((2, 3, 3), np.uint8)
    labels[0, 1, 1] = 2
    label_map = LabelMap(labels)
    assert label_map.binary(2).sum() == 1
    assert label_map.binary().sum() == 1
    with pytest.raises(InputError, match=r"ids \[7\]"):
        LabelMap(np.full((1, 2, 2), 7, np.uint8))
    with pytest.raises(InputError, match="integer"):
        LabelMap(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(InputError, match="do not match"):
        label_map.check_matches(Video(np.zeros((2, 3, 4), np.float32)))
