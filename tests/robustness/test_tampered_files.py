"""Files that were altered after they were written are not trusted (issue 15, class 5): a
checkpoint without its weights' SHA-256, a well-formed but edited CT cache."""

import json
import warnings

import numpy as np
import pytest
import torch

from spinv.operators import ParallelBeamCT
from spinv.operators import ct as ct_module
from spinv.training.checkpoint import read_checkpoint, save_checkpoint


def test_a_checkpoint_without_its_hash_is_refused(tmp_path):
    model = torch.nn.Linear(2, 2)
    ckpt = save_checkpoint(tmp_path, model, None, step=1, config={"name": "x"})
    meta = json.loads((ckpt / "meta.json").read_text())
    del meta["weights_sha256"]
    (ckpt / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="meta.json.*weights_sha256"):
        read_checkpoint(tmp_path)


def test_an_edited_but_well_formed_ct_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path))
    ct_module._MEMO.clear()
    reference = ParallelBeamCT(20, 7).matrix.copy()
    path = ParallelBeamCT(20, 7).cache_path
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["data"] = arrays["data"] * 1.5  # consistent CSR, wrong physics
    np.savez(path, **arrays)
    ct_module._MEMO.clear()
    with pytest.warns(UserWarning, match="SHA-256"):
        rebuilt = ParallelBeamCT(20, 7)
    assert (rebuilt.matrix != reference).nnz == 0
    ct_module._MEMO.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ParallelBeamCT(20, 7)  # the rewritten file is trusted again
