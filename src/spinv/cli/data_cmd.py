"""``spinv data``: list the bundled datasets and render a grid of their slices."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from spinv.atomic import atomic_save_figure

data_app = typer.Typer(
    name="data",
    help="Bundled real datasets (ct-head, brain-t1, brain-complex, natural).",
    no_args_is_help=True,
)


@data_app.command("list")
def _list() -> None:
    """Show the bundled datasets: shape, split sizes, licence and source."""
    from rich.console import Console
    from rich.table import Table

    from spinv.data import list_datasets

    table = Table(title="spinv bundled datasets")
    for col in ("name", "shape (N, H, W)", "train/val/test", "licence", "description"):
        table.add_column(col)
    for name, info in list_datasets().items():
        sizes = "/".join(str(info.split_sizes[k]) for k in ("train", "val", "test"))
        shape = " x ".join(str(s) for s in info.shape)
        table.add_row(name, shape, sizes, info.licence, info.description)
    Console(width=160).print(table)


def _parse_indices(index: str | None, n: int) -> list[int]:
    if index is None:
        return list(range(min(n, 8)))
    out: list[int] = []
    for part in index.split(","):
        part = part.strip()
        try:
            if re.fullmatch(r"\d+-\d+", part):
                a, b = part.split("-")
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(
                f"--index={index!r}: expected integers or ranges such as '0,5,10-12'"
            ) from None
    bad = [i for i in out if not -n <= i < n]
    if bad or not out:
        raise ValueError(f"--index={index!r}: indices {bad} out of range for {n} images")
    return out


def _show(
    name: str = typer.Argument(..., help="Dataset name (see `spinv data list`)."),
    out: Path = typer.Option(..., "--out", help="Output PNG file."),
    split: str | None = typer.Option(None, "--split", help="train, val or test (default: all)."),
    index: str | None = typer.Option(
        None, "--index", help="Images to show, e.g. '0,5,10-12' (default: the first 8)."
    ),
    columns: int = typer.Option(4, "--columns", help="Images per row of the grid."),
) -> None:
    """Save a grid of images of a bundled dataset as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spinv.data import load_dataset

    if out.suffix.lower() != ".png":
        raise ValueError(f"--out={str(out)!r}: expected a .png file name")
    if columns < 1:
        raise ValueError(f"--columns={columns}: expected a positive integer")
    images = load_dataset(name, split=split)
    if len(images) == 0:
        raise ValueError(f"dataset {name!r} has no images in split {split!r}")
    idx = _parse_indices(index, len(images))
    cols = min(columns, len(idx))
    rows = (len(idx) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), idx, strict=False):
        ax.imshow(images[i], cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(f"{name}[{i}]", fontsize=8)
    fig.suptitle(f"{name} ({split or 'all'})", fontsize=10)
    fig.tight_layout()
    atomic_save_figure(fig, out, dpi=100)
    typer.echo(f"wrote {out} ({len(idx)} images of {name})")


data_app.command("show")(_show)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the ``spinv`` app."""
    app.add_typer(data_app, name="data")
