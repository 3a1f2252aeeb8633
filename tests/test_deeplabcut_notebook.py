"""notebooks/deeplabcut_project.ipynb runs from top to bottom in tiny mode on the real
DeepLabCut project of ../shared/data: conversion, training, evaluation with and without
boxes, video tracking with smoothing. The tiny model's numbers mean nothing; what is
checked is that every stage ran on the real files and wrote what it says."""

import json
import re

import cv2
import pytest
from test_notebooks import execute, result_text, tagged_cell

pytestmark = pytest.mark.slow


def shown_dict(cell) -> dict:
    """The dict a cell shows as its result (a flat dict of numbers and strings)."""
    text = result_text(cell)
    pairs = re.findall(r"'([^']+)': ('[^']*'|[-0-9.e]+|nan)", text)
    return {key: value.strip("'") for key, value in pairs}


def test_deeplabcut_notebook_runs_end_to_end(shared_data, tmp_path, monkeypatch):
    notebook = execute("deeplabcut_project", tmp_path, monkeypatch, shared_data=shared_data)
    assert shown_dict(tagged_cell(notebook, "converted")) == {"train": "77", "val": "19"}
    evaluation = shown_dict(tagged_cell(notebook, "evaluation"))
    assert float(evaluation["mean_px_error"]) > 0 and evaluation["people"] == "19"
    no_boxes = shown_dict(tagged_cell(notebook, "no_boxes"))
    assert float(no_boxes["mean_px_error_without_boxes"]) > 0 and no_boxes["frames"] == "4"
    video = shown_dict(tagged_cell(notebook, "video"))
    assert video["frames"] == "8" and int(video["searches"]) >= 1
    frames = json.loads((tmp_path / "m3v1mp4_keypoints.json").read_text())
    assert len(frames["frames"] if isinstance(frames, dict) else frames) == 8
    rows = (tmp_path / "m3v1mp4_keypoints.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 8 and rows[0].startswith("frame,time_s,track_id")
    capture = cv2.VideoCapture(str(tmp_path / "m3v1mp4_overlay.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    capture.release()
    assert (tmp_path / "run" / "model.keras").exists()
