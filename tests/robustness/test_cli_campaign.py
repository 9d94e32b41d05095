"""The bad-input campaign as a table (issue 15): every CLI command tried with malformed files,
numbers, configs and output paths. Each case must end with exit code 2, exactly one `error:`
line naming the option or file (the row's needle), no traceback, and nothing written.

A new command joins by adding rows to CASES. Placeholders: {bad_yaml} (invalid YAML),
{latin} (not UTF-8), {missing} (a path that does not exist), {garbage} (a file of junk bytes),
{image} (a valid 16x16 .npy image), {out} (the output path that must not appear), {empty}
(an empty .npy array).
"""

from __future__ import annotations

import numpy as np
import pytest

from spinv.cli import main

CASES = [
    # simulate / reconstruct
    ("simulate --problem ct --input {missing} --out {out}.npz", "{missing}"),
    ("simulate --problem ct --input {garbage} --out {out}.npz", "{garbage}"),
    ("simulate --problem xray --input {image} --out {out}.npz", "--problem"),
    ("simulate --problem ct --input {image} --out {out}.txt", "--out"),
    ("simulate --problem mri --input {image} --rate 0 --out {out}.npz", "--rate"),
    ("simulate --problem mri --input {image} --mask {empty} --out {out}.npz", "mask"),
    ("reconstruct --measurements {missing} --method fbp --out {out}.npy", "--measurements"),
    ("reconstruct --measurements {garbage} --method fbp --out {out}.npy", "{garbage}"),
    ("reconstruct --measurements {image} --method tv --alpha nan --out {out}.npy", "--alpha"),
    ("reconstruct --measurements {image} --method fbp --detector-spacing 1e300 --out {out}.npy",
     "--detector-spacing"),
    ("reconstruct --measurements {image} --method fbp --iterations 0 --out {out}.npy",
     "--iterations"),
    ("reconstruct --measurements {image} --method zero-filled --mask sampling-nope64 "
     "--out {out}.npy", "--mask"),
    ("reconstruct --measurements {image} --method lpg --out {out}.npy", "--model"),
    ("reconstruct --measurements {image} --method lpg --model {missing} --out {out}.npy",
     "{missing}"),
    ("reconstruct --measurements {image} --method generative --out {out}.npy", "--model"),
    ("reconstruct --measurements {image} --method generative --prior bogus --model {missing} "
     "--out {out}.npy", "--prior"),
    ("reconstruct --measurements {image} --method generative --model vae-brain32 "
     "--out {out}.npy", "--method generative"),
    ("reconstruct --measurements {image} --method fbp --batch-size 0 --out {out}.npy",
     "--batch-size"),
    ("reconstruct --input {image} --method fbp --out {out}.npy", "--problem"),
    ("simulate --problem ct --input {image} --geometry cone --out {out}.npz", "--geometry"),
    ("simulate --problem ct --input {image} --geometry fan --source-distance 5 --out {out}.npz",
     "--source-distance"),
    ("simulate --problem ct --input {image} --geometry fan --detector-distance nan "
     "--out {out}.npz", "--detector-distance"),
    ("simulate --problem ct --input {image} --geometry fan --detector-type curved "
     "--out {out}.npz", "--detector-type"),
    ("reconstruct --problem ct --input {image} --source-distance 40 --method fbp "
     "--out {out}.npy", "--source-distance"),
    ("reconstruct --measurements {image} --geometry fan --method fbp --out {out}.npy", "--size"),
    ("simulate --problem mri --input {image} --geometry fan --out {out}.npz", "--geometry"),
    ("reconstruct --measurements {image} --method fbp --calibration 8 --out {out}.npy",
     "--calibration"),
    ("simulate --problem ct --input {image} --coils 4 --out {out}.npz", "--coils"),
    ("simulate --problem mri --input {image} --coils 0 --out {out}.npz", "--coils"),
    # training, evaluation, reports, models
    ("train {missing} --out {out}", "{missing}"),
    ("train {bad_yaml} --out {out}", "{bad_yaml}"),
    ("train {latin} --out {out}", "{latin}"),
    ("evaluate {missing} --out {out}", "{missing}"),
    ("lipschitz {missing}", "{missing}"),
    ("report {missing} --out {out}", "{missing}"),
    ("models show no-such-model", "no-such-model"),
    ("models verify no-such-model", "no-such-model"),
    # experiments
    ("experiment run equivariance sweep-n {bad_yaml} --out {out}", "{bad_yaml}"),
    ("experiment run equivariance no-such --out {out} {image}", "no-such"),
    ("experiment run sampling learn {latin} --out {out}", "{latin}"),
    ("sampling learn {bad_yaml} --out {out}", "{bad_yaml}"),
    ("sampling evaluate {image} --alpha -1", "--alpha"),
    ("sampling evaluate {image} --alpha nan", "--alpha"),
    ("sampling evaluate {image} --noise -1", "--noise"),
    ("sampling evaluate {empty}", "{empty}"),
    ("equivariance groups {bad_yaml} --out {out}", "{bad_yaml}"),
    ("nonexpansive denoise {bad_yaml} --out {out}", "{bad_yaml}"),
    ("generative train {bad_yaml} --out {out}", "{bad_yaml}"),
    ("demo --out {out} --image-size 8 --retrain", "--image-size"),
    ("data show no-such-dataset --out {out}.png", "no-such-dataset"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("campaign")
    (d / "bad.yaml").write_text("train: {steps: 3\n  oops: [\n")
    (d / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (d / "garbage.npy").write_bytes(b"\x00\x01not an array at all")
    np.save(d / "image.npy", np.random.default_rng(0).random((16, 16)).astype(np.float32))
    np.save(d / "empty.npy", np.zeros((0, 0), np.float32))
    return {"bad_yaml": d / "bad.yaml", "latin": d / "latin.yaml", "missing": d / "missing.x",
            "garbage": d / "garbage.npy", "image": d / "image.npy", "empty": d / "empty.npy"}


@pytest.mark.parametrize("command, needle", CASES, ids=[c for c, _ in CASES])
def test_bad_input_is_one_error_line_and_writes_nothing(files, tmp_path, capsys, command,
                                                        needle):
    out = tmp_path / "out"
    names = {**{k: str(v) for k, v in files.items()}, "out": str(out)}
    argv = command.format(**names).split()
    before = set(tmp_path.iterdir())
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err and err.startswith("error:") and err.count("\n") == 1, err
    assert needle.format(**names) in err, err
    assert set(tmp_path.iterdir()) == before, "the failed command wrote files"
