"""The table of campaign cases, command by command (see ``cases.py`` for the helpers)."""

from __future__ import annotations

from cases import _copy_run, add, configs, files, numbers, outputs
from faults import concurrency_and_faults

IMG_EXTS = ("npy", "npz", "h5", "dcm", "nii", "png", "tif")
RUNS = ["run-trunc", "run-nosha", "run-badmeta", "run-nostep", "run-shape", "run-badlatest",
        "run-noconfig", "emptydir", "notrun"]


def simulate() -> None:
    ct = "simulate --problem ct --input {fx}/image16.npy --angles 10 --out {out}.npz"
    mri = "simulate --problem mri --input {fx}/image16.npy --out {out}.npz"
    files("simulate", "simulate --problem ct --input {F} --out {out}.npz", IMG_EXTS,
          ["missing", "empty", "garbage", "through-file"], "--input")
    files("simulate", "simulate --problem ct --input {F} --out {out}.npz", ("npy",),
          ["dir", "trunc", "object", "zero", "vector", "nan", "inf", "strings", "liar", "big5d",
           "complex", "rect", "negative"], "--input", any_kinds=("complex", "negative"))
    add("rgb4x64", "simulate", "file", "simulate --problem ct --input {fx}/rgb4x64.png "
        "--out {out}.npz", ["--input", "{fx}/rgb4x64.png"])
    files("simulate", mri.replace("--out", "--mask {F} --out"), ("npy",),
          ["missing", "garbage", "zero", "nan", "object", "rect", "negative", "allzero"], "--mask")
    add("problem", "simulate", "value", "simulate --problem xray --input {fx}/image16.npy "
        "--out {out}.npz", "--problem")
    add("mask-name", "simulate", "value", mri.replace("--out", "--mask bogus --out"), "--mask")
    numbers("simulate", ct, {"--slice": ("int", ("neg", "zero")), "--size": ("int", ()),
                             "--angles": ("int", ()), "--photons": ("float", ("any:huge",)),
                             "--mu": ("float", ("any:huge",)), "--seed": ("int", ("zero",))})
    numbers("simulate", mri, {"--rate": ("float", ()),
                              "--noise": ("float", ("zero", "any:huge"))})
    outputs("simulate", ct.replace("{out}.npz", "{O}"), run_like=False, file_out=".npz")
    add("suffix", "simulate", "output", ct.replace("{out}.npz", "{out}.txt"), "--out")


def reconstruct() -> None:
    meas = "reconstruct --measurements {fx}/meas_ct.npz --method fbp --out {out}.npy"
    tv = ("reconstruct --measurements {fx}/meas_mri.npz --method tv --alpha 0.01 "
          "--iterations 5 --out {out}.npy")
    raw = "reconstruct --measurements {fx}/sino.npy --method fbp --out {out}.npy"
    inp = ("reconstruct --input {fx}/image16.npy --problem ct --method fbp --angles 10 "
           "--out {out}.npy")
    mri = ("reconstruct --input {fx}/image16.npy --problem mri --method zero-filled "
           "--out {out}.npy")
    pnp = ("reconstruct --measurements {fx}/meas_denoise.npz --method pnp-pgd --model {fx}/run "
           "--iterations 2 --out {out}.npy")
    files("reconstruct", "reconstruct --measurements {F} --method fbp --out {out}.npy",
          ("npy", "npz", "h5"), ["missing", "empty", "garbage", "through-file"],
          "--measurements")
    files("reconstruct", "reconstruct --measurements {F} --method fbp --out {out}.npy",
          ("npy",), ["dir", "trunc", "object", "zero", "vector", "nan", "inf", "strings", "liar",
                     "big5d"], "--measurements", any_kinds=("big5d",))
    for name in ("other_keys", "nan_meas"):  # one array of any name: a raw sinogram
        add(name, "reconstruct", "file", meas.replace("{fx}/meas_ct.npz", f"{{fx}}/{name}.npz"),
            ["--measurements", f"{{fx}}/{name}.npz"],
            expect="any" if name == "other_keys" else "error")
    files("reconstruct", inp.replace("{fx}/image16.npy", "{F}"), ("npy", "png", "dcm"),
          ["missing", "garbage", "nan"], "--input")
    files("reconstruct", meas.replace("--out", "--reference {F} --out"), ("npy",),
          ["missing", "garbage", "rect", "nan"], "--reference")
    add("reference-constant", "reconstruct", "file",
        inp.replace("--input {fx}/image16.npy", "--input {fx}/constant.npy"),
        ["--input", "{fx}/constant.npy"], expect="any")
    add("guide-missing", "reconstruct", "file", tv.replace("--method tv", "--method dtv")
        .replace("--out", "--guide {fx}/missing.npy --out"), ["--guide", "{fx}/missing.npy"])
    files("reconstruct", mri.replace("--out", "--mask {F} --out"), ("npy",),
          ["garbage", "zero", "nan", "rect", "allzero"], "--mask")
    for r in RUNS + ["missing"]:
        add(f"model-{r}", "reconstruct", "checkpoint", pnp.replace("{fx}/run", f"{{fx}}/{r}"),
            ["--model", f"{{fx}}/{r}"])
    add("model-zoo-bogus", "reconstruct", "checkpoint", pnp.replace("{fx}/run", "no-such-model"),
        ["--model", "no-such-model"])
    add("model-kind", "reconstruct", "checkpoint",
        meas.replace("--method fbp", "--method lpg --model {fx}/run"), ["--model", "{fx}/run"])
    add("method", "reconstruct", "value", meas.replace("fbp", "bogus"), "--method")
    add("alpha-text", "reconstruct", "number", tv.replace("0.01", "abc"), "--alpha")
    numbers("reconstruct", tv.replace("--alpha 0.01", ""),
            {"--alpha": ("float", ("text", "any:zero", "any:huge"))})
    numbers("reconstruct", tv, {"--iterations": ("int", ()), "--batch-size": ("int", ()),
                                "--seed": ("int", ("zero", "any:neg"))})
    numbers("reconstruct", raw, {"--detectors": ("int", ()), "--angular-range": ("float", ()),
                                 "--detector-spacing": ("float", ()),
                                 "--photons": ("float", ("any:huge",))})
    numbers("reconstruct", inp, {"--size": ("int", ()), "--mu": ("float", ("any:huge",)),
                                 "--slice": ("int", ("neg", "zero")), "--angles": ("int", ())})
    numbers("reconstruct", mri, {"--rate": ("float", ()),
                                 "--noise": ("float", ("zero", "any:huge"))})
    numbers("reconstruct", pnp, {"--pnp-weight": ("float", ()), "--pnp-step": ("float", ()),
                                 "--pnp-rho": ("float", ("any:huge",))})
    add("both-inputs", "reconstruct", "value", meas.replace("--method", "--input "
        "{fx}/image16.npy --method"), ["--measurements", "--input"])
    outputs("reconstruct", meas.replace("{out}.npy", "{O}"), run_like=False, file_out=".npy")
    add("existing-file", "reconstruct", "output", meas.replace("{out}.npy", "{case}/afile.npy"),
        ["--out", "{case}/afile.npy"], setup=_afile_npy)
    add("suffix", "reconstruct", "output", meas.replace("{out}.npy", "{out}.txt"), "--out")


def _afile_npy(case, fx) -> None:
    (case / "afile.npy").write_bytes((fx / "image16.npy").read_bytes())


def train() -> None:
    base = "train {fx}/train-ok.yaml --out {out}"
    configs("train", "train {C} --out {out}", "train")
    for name in ("bigct", "baddata", "badmodel", "modelopt", "datafile", "zerobatch"):
        add(name, "train", "config", f"train {{fx}}/train-{name}.yaml --out {{out}}",
            [f"{{fx}}/train-{name}.yaml", "train.", "data.", "model.", "problem.",
             "{fx}/garbage.npy"])
    add("hugelr", "train", "config", "train {fx}/train-hugelr.yaml --out {out}",
        ["train.lr", "loss"], expect="any")
    numbers("train", base, {"--max-steps": ("int", ("any:zero",)), "--seed": ("int", ("zero",))},
            also={"--seed": "train.seed"})  # (an override is reported under its config key)
    for name, value in {"nan": "train.lr=nan", "text": "train.lr=abc", "neg": "train.steps=-1",
                        "noeq": "train.steps", "unknown": "train.nosuch=1",
                        "nosection": "nosuch.key=1", "empty": "=3",
                        "inf": "train.grad_clip=inf"}.items():
        add(f"set-{name}", "train", "value", f"{base} --set {value}",
            ["--set", value, f"'{value.split('=')[0] or value}'"])
    for dev in ("cuda", "bogus", "mps"):
        add(f"device-{dev}", "train", "value", f"{base} --device {dev}",
            ["--device", "train.device"])
    outputs("train", "train {fx}/train-ok.yaml --out {O}", foreign="error")
    add("resume-missing", "train", "resume", base + " --resume", ["--out", "--resume"])
    add("resume-emptydir", "train", "resume", "train {fx}/train-ok.yaml --out {case}/e --resume",
        ["--out", "--resume", "{case}/e"], setup=lambda c, f: (c / "e").mkdir())
    add("resume-notrun", "train", "resume", "train {fx}/train-ok.yaml --out {case}/mine "
        "--resume", ["--out", "{case}/mine"], setup=_foreign)
    add("resume-other-config", "train", "resume", "train {fx}/train-ok.yaml --out {case}/run "
        "--resume --set train.lr=0.5", ["train.lr", "{case}/run"], setup=_copy_run("run"))
    add("resume-fewer-steps", "train", "resume", "train {fx}/train-ok.yaml --out {case}/run "
        "--resume --set train.steps=2", ["train.steps", "{case}/run"], setup=_copy_run("run"))
    add("resume-damaged", "train", "resume", "train {fx}/train-ok.yaml --out {case}/run --resume "
        "--set train.steps=6", ["{case}/run", "meta.json"], setup=_copy_run("run-nostep"))
    add("fresh-over-run", "train", "output", "train {fx}/train-ok.yaml --out {case}/run",
        ["{case}/run", "--out"], setup=_copy_run("run"))


def _foreign(case, fx) -> None:
    from cases import _mkforeign

    _mkforeign(case, fx)


def evaluate_lipschitz_report() -> None:
    for r in RUNS + ["missing", "garbage.npy"]:
        add(f"run-{r}", "evaluate", "checkpoint", f"evaluate {{fx}}/{r} --out {{out}}",
            [f"{{fx}}/{r}"])
        add(f"ckpt-{r}", "lipschitz", "checkpoint", f"lipschitz {{fx}}/{r} --steps 1 --starts 1",
            [f"{{fx}}/{r}"])
        add(f"run-{r}", "report", "checkpoint", f"report {{fx}}/{r} --out {{out}}",
            [f"{{fx}}/{r}"], expect="any" if r.startswith("run-") else "error")
    ev = "evaluate {fx}/run --out {out} --n-images 2"
    numbers("evaluate", ev.replace(" --n-images 2", ""), {"--n-images": ("int", ())})
    numbers("evaluate", ev, {"--examples": ("int", ("zero",)),
                             "--seed": ("int", ("zero", "any:neg"))})
    add("split", "evaluate", "value", ev + " --split bogus", "--split")
    add("rotate", "evaluate", "value", ev + " --rotate abc", "--rotate")
    add("rotate-nan", "evaluate", "value", ev + " --rotate nan", "--rotate")
    add("data-missing", "evaluate", "file", ev + " --data {fx}/missing.npy",
        ["--data", "{fx}/missing.npy"])
    add("data-garbage", "evaluate", "file", ev + " --data {fx}/garbage.npy",
        ["--data", "{fx}/garbage.npy"])
    add("data-name", "evaluate", "value", ev + " --data no-such-data", ["--data", "no-such-data"])
    outputs("evaluate", ev.replace("{out}", "{O}"))
    lip = "lipschitz {fx}/run --size 16 --batch 1 --starts 1 --steps 2"
    numbers("lipschitz", "lipschitz {fx}/run", {"--size": ("int", ()), "--batch": ("int", ()),
                                                "--starts": ("int", ()),
                                                "--steps": ("int", ("any:zero",)),
                                                "--channels": ("int", ())})
    numbers("lipschitz", lip, {"--seed": ("int", ("zero",))})
    outputs("lipschitz", lip + " --out {O}", run_like=False)
    numbers("report", "report {fx}/run --out {out}", {"--examples": ("int", ("zero",))})
    outputs("report", "report {fx}/run --out {O}", run_like=False)
    add("existing-file", "report", "output", "report {fx}/run --out {case}/afile",
        ["--out", "{case}/afile"], setup=lambda c, f: (c / "afile").write_text("precious\n"))


def data_models() -> None:
    add("unknown", "data show", "value", "data show no-such-dataset --out {out}.png",
        "no-such-dataset")
    show = "data show natural --out {out}.png"
    add("split", "data show", "value", show + " --split bogus", "--split")
    numbers("data show", show, {"--index": ("int", ("zero", "any:neg")),
                                "--columns": ("int", ())})
    outputs("data show", show.replace("{out}.png", "{O}"), run_like=False, file_out=".png")
    add("suffix", "data show", "output", show.replace(".png", ".txt"), "--out")
    add("unknown", "models show", "value", "models show no-such-model", "no-such-model")
    add("path", "models show", "value", "models show {fx}/run", "{fx}/run")
    add("unknown", "models verify", "value", "models verify no-such-model", "no-such-model")
    add("unknown", "models train", "value", "models train no-such-model --out {out}",
        "no-such-model")
    add("max-steps", "models train", "number", "models train ct64-lpg-c4 --out {out} "
        "--max-steps -1", "--max-steps")
    add("through-file", "models train", "output", "models train ct64-lpg-c4 --out "
        "{fx}/plainfile/x --max-steps 1", ["--out", "{fx}/plainfile/x"])
    for r in ("missing", "emptydir", "notrun", "run-trunc", "run-nosha", "garbage.npy"):
        add(f"run-{r}", "models release", "checkpoint", f"models release {{fx}}/{r} --name "
            "campaign-x --description d", [f"{{fx}}/{r}"])
    for name, value in {"slash": "a/b", "dotdot": "../x", "exists": "ct64-lpg-c4",
                        "dot": "."}.items():
        add(f"name-{name}", "models release", "value", "models release {fx}/run-nosha --name "
            f"{value} --description d", ["--name", "{fx}/run-nosha", value])


def sampling() -> None:
    configs("sampling learn", "sampling learn {C} --out {out}", "sampling")
    for name in ("datafile", "size0"):
        add(name, "sampling learn", "config", f"sampling learn {{fx}}/sampling-{name}.yaml "
            "--out {out}", [f"{{fx}}/sampling-{name}.yaml", "size", "data"])
    learn = "sampling learn {fx}/sampling-ok.yaml --out {out}"
    numbers("sampling learn", learn, {"--maxiter": ("int", ()), "--seed": ("int", ("zero",))})
    outputs("sampling learn", learn.replace("{out}", "{O}") + " --maxiter 1",
            foreign_timeout=150)  # (a whole, legitimate run)
    files("sampling evaluate", "sampling evaluate {F} --alpha 0.01", ("npy",),
          ["missing", "empty", "garbage", "dir", "trunc", "object", "zero", "vector", "nan",
           "inf", "strings", "complex", "rect", "negative", "allzero", "liar", "big5d"], "")
    ev = "sampling evaluate {fx}/pattern.npy --alpha 0.01 --n-train 1"
    numbers("sampling evaluate", ev.replace("--alpha 0.01 ", ""),
            {"--alpha": ("float", ("any:zero",))})
    numbers("sampling evaluate", ev, {"--noise": ("float", ("zero",)),
                                      "--eps": ("float", ("any:huge",)),
                                      "--gamma": ("float", ("any:huge",)),
                                      "--seed": ("int", ("zero", "any:neg"))})
    numbers("sampling evaluate", "sampling evaluate {fx}/pattern.npy",
            {"--n-train": ("int", ())})
    add("data", "sampling evaluate", "value", ev + " --data no-such", ["--data", "no-such"])
    add("data-garbage", "sampling evaluate", "file", ev + " --data {fx}/garbage.npy",
        ["--data", "{fx}/garbage.npy"])
    add("regulariser", "sampling evaluate", "value", ev + " --regulariser bogus", "--regulariser")
    outputs("sampling evaluate", ev + " --out {O}", run_like=False)
    add("name", "sampling experiment", "value", "sampling experiment bogus "
        "{fx}/sampling-ok.yaml --out {out}", "bogus")
    configs("sampling experiment", "sampling experiment beta-sweep {C} --out {out}", "sampling")


def chapters() -> None:
    configs("generative train", "generative train {C} --out {out}", "generative")
    outputs("generative train", "generative train {fx}/generative-ok.yaml --out {O}")
    gr = "generative reconstruct --models {fx}/emptydir --out {out}"
    for r in ("missing", "notrun", "garbage.npy", "run"):
        add(f"models-{r}", "generative reconstruct", "checkpoint",
            gr.replace("emptydir", r), ["--models", f"{{fx}}/{r}"])
    numbers("generative reconstruct", gr, {"--lam": ("float", ("zero",)), "--rate": ("float", ()),
                                           "--noise": ("float", ()), "--iterations": ("int", ()),
                                           "--n-images": ("int", ()), "--seed": ("int", ("zero",))})
    for opt in ("--regulariser", "--covariance", "--pattern", "--method", "--dataset"):
        add(f"{opt[2:]}-bogus", "generative reconstruct", "value", f"{gr} {opt} bogus", opt)
    configs("generative experiment", "generative experiment --config {C} --out {out}",
            "generative")
    for sub in ("sweep-n", "groups", "depth"):
        cmd = f"equivariance {sub}"
        configs(cmd, f"{cmd} {{C}} --out {{out}}", "equivariance")
        add("scale", cmd, "value", f"{cmd} {{fx}}/equivariance-ok.yaml --out {{out}} --scale "
            "bogus", "--scale")
        outputs(cmd, f"{cmd} {{fx}}/equivariance-ok.yaml --out {{O}}")
    for sub in ("toy", "denoise", "pnp"):
        cmd = f"nonexpansive {sub}"
        configs(cmd, f"{cmd} {{C}} --out {{out}}", "nonexpansive")
        outputs(cmd, f"{cmd} {{fx}}/nonexpansive-ok.yaml --out {{O}}")
    for r in ("missing", "garbage.npy", "run-trunc", "emptydir"):
        add(f"denoiser-{r}", "nonexpansive pnp", "checkpoint", "nonexpansive pnp "
            f"{{fx}}/nonexpansive-ok.yaml --out {{out}} --denoiser {{fx}}/{r}",
            ["--denoiser", f"{{fx}}/{r}"])


def experiment_demo() -> None:
    run = "experiment run nonexpansive toy {fx}/nonexpansive-ok.yaml --out {out}"
    add("chapter", "experiment run", "value", run.replace("nonexpansive toy", "bogus toy"),
        "bogus")
    add("name", "experiment run", "value", run.replace("nonexpansive toy", "nonexpansive bogus"),
        "bogus")
    configs("experiment run", "experiment run nonexpansive toy {C} --out {out}", "nonexpansive")
    add("scale", "experiment run", "value", run + " --scale bogus", "--scale")
    for name, value in {"nan": "steps=nan", "noeq": "steps", "unknown": "nosuch=1",
                        "text": "steps=abc", "negative": "steps=-1"}.items():
        add(f"set-{name}", "experiment run", "value", f"{run} --set {value}", ["--set", value])
    outputs("experiment run", run.replace("{out}", "{O}"))
    demo = "demo --out {out} --retrain --n-train 2 --n-test 1 --steps 1 --image-size 16"
    numbers("demo", demo.replace(" --image-size 16", ""), {"--image-size": ("int", ())})
    numbers("demo", demo.replace(" --n-train 2", ""), {"--n-train": ("int", ())})
    numbers("demo", demo.replace(" --n-test 1", ""), {"--n-test": ("int", ())})
    numbers("demo", demo.replace(" --steps 1", ""), {"--steps": ("int", ())})
    numbers("demo", demo, {"--width": ("int", ()), "--iterations": ("int", ()),
                           "--threads": ("int", ()), "--seed": ("int", ("zero",))})
    outputs("demo", demo.replace("{out}", "{O}"), foreign_timeout=150)


def build_table() -> None:
    simulate()
    reconstruct()
    train()
    evaluate_lipschitz_report()
    data_models()
    sampling()
    chapters()
    experiment_demo()
    concurrency_and_faults()
