"""Where the suite keeps things: the repository root, its caches and the default results files."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / ".cache"
RESULTS_DIR = REPO_ROOT / "results"


def default_csv(ckpt_id: str, slug: str | None, prefix: str = "") -> Path:
    """results/<prefix><slug>.csv: the preset's slug, else the checkpoint folder's name."""
    stem = slug or Path(ckpt_id.rstrip("/")).name.lower()
    return RESULTS_DIR / f"{prefix}{stem}.csv"
