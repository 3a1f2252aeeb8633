"""Fault class: a `.keras` file that carries code. Every loader of this project uses
`safe_mode=True` (`runs.load_model`), so a Lambda layer's Python bytecode is refused and
never run; the commands say so in one line."""

import keras
import pytest

from pose_keras import predict
from pose_keras.runs import load_model


@pytest.fixture
def lambda_model(tmp_path):
    marker = tmp_path / "code_ran"
    # A real lambda: Keras stores its bytecode in the file (a named function is only a name).
    code = lambda x, path=str(marker): (__import__("pathlib").Path(path).write_text("ran"), x)[1]  # noqa: E731
    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Lambda(code)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model ran it once, here in the test
    return path, marker


def test_a_lambda_layer_is_refused_and_its_code_is_not_run(lambda_model):
    path, marker = lambda_model
    with pytest.raises(ValueError, match=r"lambda\.keras: cannot load.*safe_mode"):
        load_model(path)
    assert not marker.exists()


def test_predict_refuses_it_in_one_line(lambda_model, shared_data, tmp_path, capsys):
    path, marker = lambda_model
    image = shared_data / "mpii" / "images" / "005808361.jpg"
    assert predict.main(["--model", str(path), str(image), "--output", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "lambda.keras" in lines[0]
    assert not marker.exists()
