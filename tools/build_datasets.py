#!/usr/bin/env python
"""Build the real datasets bundled in ``src/spinv/data/bundled/``, with provenance and licences.

Sources (all redistributable, fetched through the ordinary package clients):

* ``ct-head``: Debian package ``invesalius-examples``, file ``examples/Cranium.inv3`` (a gzip tar
  holding ``main.plist`` -- shape/dtype of the volume -- and ``matrix.dat``, int16 Hounsfield
  units, 108 x 256 x 256 axial head CT). GPL-2 (Debian copyright file copied).
* ``brain-t1``: Debian package ``mricron-data``, ``templates/ch2.nii.gz`` (Colin27 T1 template,
  181 x 217 x 181 uint8, RAS); ``ch2bet.nii.gz`` (brain-extracted) decides which axial slices
  contain brain. BSD-3-Clause (Debian copyright file copied).
* ``brain-complex``: Debian package ``insighttoolkit5-examples``, ``Data/itkBrainSliceComplex.mha``
  (a real complex-valued MRI slice, MetaImage: text header + raw float32 pairs). Apache-2.0.
* ``natural``: photographs shipped inside the scikit-image and PyWavelets installations and inside
  the ``sporco`` wheel (downloaded with ``pip download --no-deps``, unzipped, never installed).

Usage::

    python tools/build_datasets.py [--work /tmp/spinv-build] [--out src/spinv/data/bundled]

The script downloads the three ``.deb`` files with ``apt-get download`` and the sporco wheel with
``pip download`` into ``--work`` unless they are already there, then writes for each dataset a
folder ``<out>/<name>/`` with ``<name>.npz`` (``np.savez_compressed``), ``provenance.json``
(package, version, sha256 of the package file and of the source file, build date, processing
steps, split indices) and the licence text(s) as ``LICENSE*``. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import plistlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from spinv.atomic import atomic_save_npz, atomic_write_json  # noqa: E402

DEFAULT_OUT = REPO / "src" / "spinv" / "data" / "bundled"

CT_WINDOW = (-1000, 1000)
CT_MIN_BODY_FRACTION = 0.10  # keep slices with >= 10 % of pixels above -300 HU
BRAIN_MIN_FRACTION = 0.02  # keep axial slices where >= 2 % of pixels are brain (ch2bet > 0)
BRAIN_SIZE = 224  # pad 217 x 181 slices to 224 x 224 (224 = 7 * 32: divisible by 2^5)
NATURAL_SIZE = 256  # centre square crop, then anti-aliased resize to 256 x 256
SPLIT_FRACTIONS = (0.6, 0.2)  # train / val fraction of slices; the rest (minus gaps) is test
SPLIT_GAP = 3  # slices dropped between consecutive slabs so neighbours do not leak


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    atomic_save_npz(path, compressed=True, **arrays)


def save_json(path: Path, obj: dict) -> None:
    atomic_write_json(path, obj)


def contiguous_splits(n: int) -> dict[str, list[int]]:
    """Contiguous slabs train | gap | val | gap | test over ``n`` ordered slices."""
    n_train = int(round(SPLIT_FRACTIONS[0] * n))
    n_val = int(round(SPLIT_FRACTIONS[1] * n))
    train = list(range(0, n_train))
    val = list(range(n_train + SPLIT_GAP, n_train + SPLIT_GAP + n_val))
    test = list(range(n_train + 2 * SPLIT_GAP + n_val, n))
    if not (train and val and test):
        raise ValueError(f"{n} slices are too few for train/val/test slabs with gaps")
    return {"train": train, "val": val, "test": test}


# --------------------------------------------------------------------------- fetching
def fetch_deb(package: str, work: Path) -> tuple[Path, Path, dict]:
    """Download ``package`` with apt-get (unless present) and extract it; return paths + info."""
    debs = sorted(work.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=work, check=True)
        debs = sorted(work.glob(f"{package}_*.deb"))
    deb = debs[-1]
    root = work / "x" / package
    if not root.exists():
        root.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)

    def field(name: str) -> str:
        return subprocess.run(
            ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
        ).stdout.strip()

    info = {
        "package": package,
        "version": field("Version"),
        "source_package": field("Source") or package,
        "homepage": field("Homepage"),
        "package_file": deb.name,
        "package_sha256": sha256(deb),
        "fetched_with": f"apt-get download {package} (Debian)",
    }
    return deb, root, info


def fetch_wheel(name: str, work: Path) -> tuple[Path, Path, dict]:
    wheels = sorted(work.glob(f"{name}-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", name, "--no-deps", "-d", str(work)],
            check=True,
        )
        wheels = sorted(work.glob(f"{name}-*.whl"))
    whl = wheels[-1]
    root = work / "x" / name
    if not root.exists():
        with zipfile.ZipFile(whl) as z:
            z.extractall(root)
    info = {
        "package": name,
        "version": whl.name.split("-")[1],
        "package_file": whl.name,
        "package_sha256": sha256(whl),
        "fetched_with": f"pip download {name} --no-deps (PyPI), unzipped, not installed",
    }
    return whl, root, info


# --------------------------------------------------------------------------- ct-head
def build_ct_head(work: Path, out: Path, today: str) -> None:
    _, root, info = fetch_deb("invesalius-examples", work)
    src = root / "usr/share/doc/invesalius-examples/examples/Cranium.inv3"
    with tarfile.open(src, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        meta = plistlib.loads(tar.extractfile(members["main.plist"]).read())
        raw = tar.extractfile(members[meta["matrix"]["filename"]]).read()
    shape = tuple(int(s) for s in meta["matrix"]["shape"])
    dtype = np.dtype(meta["matrix"]["dtype"]).newbyteorder("<")
    vol = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.int16)
    body = (vol > -300).mean(axis=(1, 2))
    keep = np.nonzero(body >= CT_MIN_BODY_FRACTION)[0]
    hu = np.clip(vol[keep], CT_WINDOW[0], CT_WINDOW[1]).astype(np.int16)
    splits = contiguous_splits(len(hu))
    folder = out / "ct-head"
    save_npz(
        folder / "ct-head.npz",
        hu=hu,
        slice_index=keep.astype(np.int16),
        spacing_mm=np.asarray(meta["spacing"], dtype=np.float32),
        **{f"split_{k}": np.asarray(v, dtype=np.int16) for k, v in splits.items()},
    )
    shutil.copyfile(root / "usr/share/doc/invesalius-examples/copyright", folder / "LICENSE")
    shutil.copyfile("/usr/share/common-licenses/GPL-2", folder / "LICENSE-GPL-2")
    save_json(
        folder / "provenance.json",
        {
            "name": "ct-head",
            "description": "Axial head CT (InVesalius example 'Cranium', ProMED CT 0051)",
            "licence": "GPL-2 (Debian copyright file in LICENSE, licence text in LICENSE-GPL-2)",
            "source": info,
            "source_file": "usr/share/doc/invesalius-examples/examples/Cranium.inv3",
            "source_file_sha256": sha256(src),
            "inner_file": meta["matrix"]["filename"],
            "inner_file_sha256": sha256_bytes(raw),
            "original_shape": list(shape),
            "original_dtype": str(meta["matrix"]["dtype"]),
            "spacing_mm": [float(s) for s in meta["spacing"]],
            "build_date": today,
            "processing": [
                "read shape/dtype from the tar's main.plist, matrix.dat as little-endian int16 HU",
                f"kept axial slices with >= {CT_MIN_BODY_FRACTION:.0%} of pixels above -300 HU "
                f"({len(keep)} of {shape[0]}; original indices in slice_index)",
                f"clipped to the display window {list(CT_WINDOW)} HU and stored as int16 HU "
                "(lossless inside the window); the loader maps the window linearly to [0, 1]",
            ],
            "stored": {"array": "hu", "shape": list(hu.shape), "dtype": "int16"},
            "splits": {k: [v[0], v[-1]] if v else [] for k, v in splits.items()},
            "split_sizes": {k: len(v) for k, v in splits.items()},
            "split_rule": f"contiguous slabs train/val/test with {SPLIT_GAP}-slice gaps",
        },
    )
    print(f"ct-head: {hu.shape} int16, splits {[len(v) for v in splits.values()]}")


# --------------------------------------------------------------------------- brain-t1
def build_brain_t1(work: Path, out: Path, today: str) -> None:
    import nibabel as nib

    _, root, info = fetch_deb("mricron-data", work)
    tdir = root / "usr/share/mricron/templates"
    img = nib.load(tdir / "ch2.nii.gz")
    if nib.aff2axcodes(img.affine) != ("R", "A", "S"):
        raise RuntimeError(f"unexpected orientation {nib.aff2axcodes(img.affine)}")
    vol = np.asarray(img.dataobj).astype(np.uint8)
    bet = np.asarray(nib.load(tdir / "ch2bet.nii.gz").dataobj)
    frac = (bet > 0).mean(axis=(0, 1))
    keep = np.nonzero(frac >= BRAIN_MIN_FRACTION)[0]
    # axial slice k: vol[:, :, k] is (x=R..., y=A...); rot90 puts anterior at the top
    slices = np.stack([np.rot90(vol[:, :, k]) for k in keep])  # (N, 217, 181)
    h, w = slices.shape[1:]
    ph, pw = BRAIN_SIZE - h, BRAIN_SIZE - w
    pad = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    slices = np.pad(slices, pad).astype(np.uint8)
    splits = contiguous_splits(len(slices))
    folder = out / "brain-t1"
    save_npz(
        folder / "brain-t1.npz",
        images=slices,
        slice_index=keep.astype(np.int16),
        **{f"split_{k}": np.asarray(v, dtype=np.int16) for k, v in splits.items()},
    )
    shutil.copyfile(root / "usr/share/doc/mricron-data/copyright", folder / "LICENSE")
    shutil.copyfile("/usr/share/common-licenses/BSD", folder / "LICENSE-BSD-3-Clause")
    save_json(
        folder / "provenance.json",
        {
            "name": "brain-t1",
            "description": "Axial slices of the Colin27 T1 MRI template (MRIcron ch2)",
            "licence": "BSD-3-Clause per the Debian copyright file of mricron-data (LICENSE)",
            "source": info,
            "source_file": "usr/share/mricron/templates/ch2.nii.gz",
            "source_file_sha256": sha256(tdir / "ch2.nii.gz"),
            "mask_file": "usr/share/mricron/templates/ch2bet.nii.gz",
            "mask_file_sha256": sha256(tdir / "ch2bet.nii.gz"),
            "original_shape": list(vol.shape),
            "build_date": today,
            "processing": [
                "ch2.nii.gz (uint8, RAS); axial slices vol[:, :, k], rotated so anterior is up",
                f"kept slices where >= {BRAIN_MIN_FRACTION:.0%} of pixels are brain in "
                f"ch2bet.nii.gz ({len(keep)} of {vol.shape[2]}; indices in slice_index)",
                f"zero-padded 217 x 181 -> {BRAIN_SIZE} x {BRAIN_SIZE} (centred)",
                "stored as uint8; the loader divides by 255",
            ],
            "stored": {"array": "images", "shape": list(slices.shape), "dtype": "uint8"},
            "splits": {k: [v[0], v[-1]] if v else [] for k, v in splits.items()},
            "split_sizes": {k: len(v) for k, v in splits.items()},
            "split_rule": f"contiguous slabs train/val/test with {SPLIT_GAP}-slice gaps",
        },
    )
    print(f"brain-t1: {slices.shape} uint8, splits {[len(v) for v in splits.values()]}")


# --------------------------------------------------------------------------- brain-complex
def read_mha(path: Path) -> tuple[dict[str, str], np.ndarray]:
    """Minimal MetaImage (.mha, ElementDataFile = LOCAL) reader: text header + raw data."""
    data = path.read_bytes()
    header: dict[str, str] = {}
    pos = 0
    while True:
        end = data.index(b"\n", pos)
        key, _, value = data[pos:end].decode("ascii").partition("=")
        header[key.strip()] = value.strip()
        pos = end + 1
        if key.strip() == "ElementDataFile":
            break
    types = {"MET_FLOAT": "f4", "MET_DOUBLE": "f8", "MET_SHORT": "i2", "MET_UCHAR": "u1"}
    order = ">" if header.get("BinaryDataByteOrderMSB", "False") == "True" else "<"
    dims = [int(s) for s in header["DimSize"].split()]
    channels = int(header.get("ElementNumberOfChannels", "1"))
    arr = np.frombuffer(data[pos:], dtype=order + types[header["ElementType"]])
    arr = arr.reshape(tuple(reversed(dims)) + ((channels,) if channels > 1 else ()))
    return header, arr


def build_brain_complex(work: Path, out: Path, today: str) -> None:
    _, root, info = fetch_deb("insighttoolkit5-examples", work)
    ddir = root / "usr/share/doc/insighttoolkit5-examples/examples/Data"
    src = ddir / "itkBrainSliceComplex.mha"
    header, arr = read_mha(src)
    z = (arr[..., 0].astype(np.float32) + 1j * arr[..., 1].astype(np.float32)).astype(np.complex64)
    folder = out / "brain-complex"
    save_npz(folder / "brain-complex.npz", real=z.real.copy(), imag=z.imag.copy())
    shutil.copyfile(root / "usr/share/doc/insighttoolkit5-examples/copyright", folder / "LICENSE")
    shutil.copyfile("/usr/share/common-licenses/Apache-2.0", folder / "LICENSE-Apache-2.0")
    save_json(
        folder / "provenance.json",
        {
            "name": "brain-complex",
            "description": "A real complex-valued MRI brain slice from the ITK examples",
            "licence": "Apache-2.0 (ITK data; Debian copyright file in LICENSE)",
            "source": info,
            "source_file": "usr/share/doc/insighttoolkit5-examples/examples/Data/"
            "itkBrainSliceComplex.mha",
            "source_file_sha256": sha256(src),
            "mha_header": header,
            "build_date": today,
            "processing": [
                "parsed the MetaImage text header; raw little-endian float32 (re, im) pairs",
                f"array (rows, cols) = {list(z.shape)} (DimSize is x, y), no other change",
                "stored real and imaginary parts as float32 (lossless; the file is small)",
            ],
            "stored": {"array": "real + 1j * imag", "shape": list(z.shape), "dtype": "float32"},
        },
    )
    print(f"brain-complex: {z.shape} complex64, |z| max {np.abs(z).max():.3g}")


# --------------------------------------------------------------------------- natural
def _to_gray_square(img: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.transform import resize

    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = rgba2rgb(img)
    if img.ndim == 3:
        img = rgb2gray(img)  # ITU-R BT.709 luma, float in [0, 1]
    else:
        img = img.astype(np.float64) / (255.0 if img.max() > 1 else 1.0)
    h, w = img.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top : top + s, left : left + s]
    img = resize(img, (NATURAL_SIZE, NATURAL_SIZE), anti_aliasing=s > NATURAL_SIZE, order=3)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def build_natural(work: Path, out: Path, today: str) -> None:
    import imageio.v3 as iio
    import pywt
    import skimage
    from skimage import data as skd

    skdir = Path(skimage.__file__).parent
    pwdir = Path(pywt.__file__).parent
    _, sproot, spinfo = fetch_wheel("sporco", work)
    spdir = sproot / "sporco" / "data"

    entries = [
        # name, loader, source file, origin, licence
        (
            "camera",
            skd.camera,
            skdir / "data/camera.png",
            "scikit-image",
            "CC0 by the photographer (Lav Varshney)",
        ),
        (
            "astronaut",
            skd.astronaut,
            skdir / "data/astronaut.png",
            "scikit-image",
            "public domain (NASA)",
        ),
        (
            "coffee",
            skd.coffee,
            skdir / "data/coffee.png",
            "scikit-image",
            "CC0 by the photographer (Rachel Michetti)",
        ),
        (
            "chelsea",
            skd.chelsea,
            skdir / "data/chelsea.png",
            "scikit-image",
            "CC0 by the photographer (Stefan van der Walt)",
        ),
        (
            "brick",
            skd.brick,
            skdir / "data/brick.png",
            "scikit-image",
            "CC0 (CC0Textures Bricks25)",
        ),
        (
            "grass",
            skd.grass,
            skdir / "data/grass.png",
            "scikit-image",
            "CC0 (DeviantArt linolafett Grass-01)",
        ),
        (
            "gravel",
            skd.gravel,
            skdir / "data/gravel.png",
            "scikit-image",
            "CC0 (CC0Textures Gravel04)",
        ),
        (
            "moon",
            skd.moon,
            skdir / "data/moon.png",
            "scikit-image",
            "no licence stated in skimage.data.moon; distributed with scikit-image (BSD-3)",
        ),
        ("rocket", skd.rocket, skdir / "data/rocket.jpg", "scikit-image", "public domain (SpaceX)"),
        (
            "coins",
            skd.coins,
            skdir / "data/coins.png",
            "scikit-image",
            "no known copyright restrictions (Brooklyn Museum Collection)",
        ),
        (
            "motorcycle",
            lambda: iio.imread(skdir / "data/motorcycle_left.png"),
            skdir / "data/motorcycle_left.png",
            "scikit-image",
            "Middlebury stereo dataset (Scharstein et al.), as distributed with scikit-image",
        ),
        (
            "ascent",
            pywt.data.ascent,
            pwdir / "data/ascent.npz",
            "PyWavelets",
            "public domain (public-domain-image.com), per the pywt.data.ascent docstring",
        ),
        (
            "aero",
            pywt.data.aero,
            pwdir / "data/aero.npz",
            "PyWavelets",
            "no licence stated in pywt.data.aero; distributed with PyWavelets (MIT)",
        ),
        (
            "barbara",
            lambda: iio.imread(spdir / "barbara.png"),
            spdir / "barbara.png",
            "sporco",
            "believed freely redistributable (sporco data README; attributed to Allen Gersho)",
        ),
        (
            "kodim23",
            lambda: iio.imread(spdir / "kodim23.png"),
            spdir / "kodim23.png",
            "sporco",
            "Kodak test image, released for unrestricted use (sporco data README)",
        ),
        (
            "monarch",
            lambda: iio.imread(spdir / "monarch.png"),
            spdir / "monarch.png",
            "sporco",
            "Waterloo BragZone, free of copyright restrictions (sporco data README)",
        ),
        (
            "sail",
            lambda: iio.imread(spdir / "sail.png"),
            spdir / "sail.png",
            "sporco",
            "Waterloo BragZone, free of copyright restrictions (sporco data README)",
        ),
        (
            "tulips",
            lambda: iio.imread(spdir / "tulips.png"),
            spdir / "tulips.png",
            "sporco",
            "Waterloo BragZone, free of copyright restrictions (sporco data README)",
        ),
    ]
    versions = {
        "scikit-image": skimage.__version__,
        "PyWavelets": pywt.__version__,
        "sporco": spinfo["version"],
    }
    # Deterministic splits by name: classical test images in test, two in val, rest train.
    split_of = {
        "camera": "test",
        "barbara": "test",
        "kodim23": "test",
        "ascent": "test",
        "chelsea": "val",
        "monarch": "val",
        "gravel": "val",
    }
    images, names, records = [], [], []
    for name, loader, path, origin, licence in entries:
        img = _to_gray_square(loader())
        images.append(img)
        names.append(name)
        records.append(
            {
                "name": name,
                "origin_package": origin,
                "origin_version": versions[origin],
                "file": str(path.relative_to(path.parents[1] if origin != "sporco" else sproot)),
                "file_sha256": sha256(path),
                "licence": licence,
                "split": split_of.get(name, "train"),
            }
        )
    stack = np.stack(images)
    splits = {
        s: [i for i, n in enumerate(names) if split_of.get(n, "train") == s]
        for s in ("train", "val", "test")
    }
    folder = out / "natural"
    save_npz(
        folder / "natural.npz",
        images=stack,
        names=np.asarray(names),
        **{f"split_{k}": np.asarray(v, dtype=np.int16) for k, v in splits.items()},
    )
    shutil.copyfile(
        skdir.parent / f"scikit_image-{skimage.__version__}.dist-info/LICENSE.txt",
        folder / "LICENSE-scikit-image.txt",
    )
    pwlic = next((pwdir.parent).glob("pywavelets-*.dist-info/licenses/LICENSE"))
    shutil.copyfile(pwlic, folder / "LICENSE-PyWavelets.txt")
    sp_lic = next(sproot.glob("sporco-*.dist-info/licenses/LICENSE"))
    shutil.copyfile(sp_lic, folder / "LICENSE-sporco.txt")
    shutil.copyfile(spdir / "README.rst", folder / "LICENSE-sporco-data-README.rst")
    save_json(
        folder / "provenance.json",
        {
            "name": "natural",
            "description": "Grayscale photographs from scikit-image, PyWavelets and sporco",
            "licence": "per image (see images[].licence); package licences in LICENSE-*",
            "sources": {
                "scikit-image": {
                    "version": versions["scikit-image"],
                    "fetched_with": "installed wheel (PyPI)",
                },
                "PyWavelets": {
                    "version": versions["PyWavelets"],
                    "fetched_with": "installed wheel (PyPI)",
                },
                "sporco": spinfo,
            },
            "build_date": today,
            "processing": [
                "RGB -> gray with skimage.color.rgb2gray (BT.709 luma); uint8 gray / 255",
                "centre square crop (side = min(H, W))",
                f"resize to {NATURAL_SIZE} x {NATURAL_SIZE} (bicubic, anti-aliased when "
                "shrinking), rounded to uint8",
            ],
            "images": records,
            "stored": {"array": "images", "shape": list(stack.shape), "dtype": "uint8"},
            "split_sizes": {k: len(v) for k, v in splits.items()},
            "split_rule": "fixed assignment by image name (classical test images in test)",
        },
    )
    print(f"natural: {stack.shape} uint8, splits {[len(v) for v in splits.values()]}")


BUILDERS = {
    "ct-head": build_ct_head,
    "brain-t1": build_brain_t1,
    "brain-complex": build_brain_complex,
    "natural": build_natural,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "spinv-build")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("datasets", nargs="*", help=f"subset of {list(BUILDERS)} (default: all)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    today = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    for name in args.datasets or list(BUILDERS):
        if name not in BUILDERS:
            parser.error(f"unknown dataset {name!r}; expected one of {list(BUILDERS)}")
        BUILDERS[name](args.work, args.out, today)
    return 0


if __name__ == "__main__":
    sys.exit(main())
