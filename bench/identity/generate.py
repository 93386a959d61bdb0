"""Generate deterministic delimited-file account snapshots for the identity benchmark.

For each size N it writes, into the data directory:

- ``accounts_N.csv``: N accounts, 10 columns (``id,name,email,...``), about 100 bytes a row.
- ``accounts_N_changed.csv``: the same snapshot with exactly N//100 rows having one attribute
  changed and N//200 other rows removed (row order otherwise kept).
- ``accounts_N.json``: a manifest with the seed, row counts and the expected counters, so the
  runner can check the server's task counters without re-deriving them.

Randomness comes from splitmix64 evaluated as polars UInt64 expressions (wrapping multiply,
division for shifts), so generation is vectorised, needs no numpy, and gives byte-identical
files for a given seed on any polars version.

Usage::

    .venv/bin/python -m bench.identity.generate --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_SEED = 20261122
# Bump when the file layout or the generation rules change, so stale data is regenerated.
FORMAT_VERSION = 1

COLUMNS = (
    "id",
    "name",
    "email",
    "department",
    "title",
    "location",
    "manager",
    "hire_date",
    "status",
    "cost_center",
)
# Attributes the "changed" variant may alter (one per changed row). The identity attribute is
# never changed, otherwise the row would count as removed + created instead of updated.
CHANGEABLE = ("email", "department", "title", "location", "status", "cost_center")


def _words(text: str) -> tuple[str, ...]:
    """Name lists are written as prose to keep the module short."""
    return tuple(text.split())


FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Carlos Karen Daniel Lisa Matthew Nancy Anthony "
    "Betty Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle "
    "Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca "
    "Jason Sharon Edward Laura Jeffrey Cynthia Ryan Amy Jacob Kathleen Gary Angela Nicholas "
    "Shirley Eric Brenda Jonathan Emma Stephen Anna Larry Pamela Justin Nicole Scott Samantha "
    "Brandon Katherine Benjamin Christine Samuel Helen Gregory Debra Alexander Rachel Patrick "
    "Carolyn Frank Janet Raymond Maria Jack Olivia Dennis Heather Jerry Diane Tyler Julie Aaron "
    "Joyce Jose Victoria Adam Ruth Nathan Virginia Henry Lauren Zachary Kelly Douglas Christina "
    "Peter Joan Kyle Evelyn Noah Judith Ethan Andrea Jeremy Hannah Walter Megan Christian Cheryl "
    "Keith Jacqueline Roger Martha Terry Madison Austin Teresa Sean Gloria Gerald Sara Carl Janice "
    "Harold Ann Dylan Kathryn Arthur Abigail Lawrence Sophia Jordan Frances Jesse Jean Bryan Alice "
    "Billy Judy Bruce Isabella Gabriel Julia Joe Grace Logan Amber Alan Denise Juan Danielle Wei "
    "Priya Aisha Kenji Yuki Mohammed Fatima Sven Ingrid Luca Giulia Mateo Lucia Arjun Ananya"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers "
    "Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo "
    "Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell "
    "Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson "
    "Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera "
    "Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez "
    "McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns "
    "Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt "
    "Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer "
    "Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant "
    "Dunn "
    "Kelley Spencer Hawkins Arnold Pierce Hansen Peters Santos Hart Bradley Knight Elliott "
    "Cunningham"
)
DEPARTMENTS = (
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "HR",
    "Legal",
    "Support",
    "IT",
    "Operations",
    "Research",
    "Facilities",
    "Security",
)
TITLES = (
    "Engineer",
    "Sr Engineer",
    "Staff Engineer",
    "Analyst",
    "Sr Analyst",
    "Manager",
    "Director",
    "Specialist",
    "Coordinator",
    "Associate",
    "Consultant",
    "Architect",
    "Administrator",
    "Accountant",
    "Recruiter",
    "VP",
)
LOCATIONS = (
    "Austin",
    "London",
    "Berlin",
    "Pune",
    "Toronto",
    "Sydney",
    "Dublin",
    "Tokyo",
    "New York",
    "Denver",
    "Paris",
    "Singapore",
)
STATUSES = ("active", "active", "active", "active", "active", "active", "leave", "inactive")
EMAIL_DOMAIN = "acme.io"

_U64 = pl.UInt64
_GOLDEN = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class DatasetManifest:
    """What was generated for one size; the runner reads the expected counters from here."""

    format_version: int
    seed: int
    rows: int
    base_file: str
    changed_file: str
    base_bytes: int
    changed_bytes: int
    base_sha256: str
    changed_sha256: str
    changed_rows: int
    removed_rows: int
    changed_file_rows: int
    changed_by_attribute: dict[str, int]
    generation_seconds: float


def _lit(value: int) -> pl.Expr:
    return pl.lit(value, dtype=_U64)


def _splitmix64(x: pl.Expr) -> pl.Expr:
    """splitmix64 finaliser; polars UInt64 multiply wraps, and // 2**k is a logical shift."""
    z = x + _lit(_GOLDEN)
    z = (z ^ (z // _lit(2**30))) * _lit(0xBF58476D1CE4E5B9)
    z = (z ^ (z // _lit(2**27))) * _lit(0x94D049BB133111EB)
    return z ^ (z // _lit(2**31))


def _py_splitmix64(x: int) -> int:
    """Pure-Python twin of :func:`_splitmix64`, used to derive per-stream salts."""
    mask = 2**64 - 1
    z = (x + _GOLDEN) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def _rand(seed: int, stream: int) -> pl.Expr:
    """A uniform UInt64 per row (column ``i``), independent for each (seed, stream)."""
    salt = _py_splitmix64(_py_splitmix64(seed) ^ (stream * 0xD1B54A32D192ED03 & (2**64 - 1)))
    return _splitmix64(pl.col("i") ^ _lit(salt))


def _below(seed: int, stream: int, bound: int) -> pl.Expr:
    """A row-wise integer in [0, bound), as Int64 (modulo bias is irrelevant at these bounds)."""
    return (_rand(seed, stream) % _lit(bound)).cast(pl.Int64)


def _pick(vocab: tuple[str, ...], index: pl.Expr) -> pl.Expr:
    """Map an integer index column onto a vocabulary."""
    return index.replace_strict(list(range(len(vocab))), list(vocab), return_dtype=pl.String)


def _id_expr(number: pl.Expr) -> pl.Expr:
    return pl.lit("u") + number.cast(pl.String).str.zfill(7)


def build_accounts(rows: int, seed: int) -> pl.DataFrame:
    """Build the base snapshot plus hidden index columns (prefixed ``_``) for the variant."""
    if rows >= 10**7:
        raise ValueError("ids are u + 7 digits; sizes must stay below 10,000,000")
    first = _below(seed, 1, len(FIRST_NAMES))
    last = _below(seed, 2, len(LAST_NAMES))
    number = pl.col("i").cast(pl.Int64) + 1
    # Managers sit earlier in the file (a tree rooted at u0000001), roughly 1 per 8 accounts.
    manager_number = (_rand(seed, 7) % (pl.col("i") // _lit(8) + _lit(1))).cast(pl.Int64) + 1
    start = pl.date(1995, 1, 1)
    hire_days = _below(seed, 8, 11_600)  # 1995-01-01 .. ~2026-10
    frame = (
        pl.select(pl.int_range(0, rows, dtype=_U64).alias("i"))
        .with_columns(
            _first=_pick(FIRST_NAMES, first),
            _last=_pick(LAST_NAMES, last),
            _dept=_below(seed, 3, len(DEPARTMENTS)),
            _title=_below(seed, 4, len(TITLES)),
            _loc=_below(seed, 5, len(LOCATIONS)),
            _status=_below(seed, 9, len(STATUSES)),
            _cc=_below(seed, 10, 900) + 100,
        )
        .with_columns(
            id=_id_expr(number),
            name=pl.col("_first") + pl.lit(" ") + pl.col("_last"),
            # The row number keeps emails unique, as a real directory would.
            email=(
                pl.col("_first").str.to_lowercase()
                + pl.lit(".")
                + pl.col("_last").str.to_lowercase()
                + number.cast(pl.String)
                + pl.lit("@" + EMAIL_DOMAIN)
            ),
            department=_pick(DEPARTMENTS, pl.col("_dept")),
            title=_pick(TITLES, pl.col("_title")),
            location=_pick(LOCATIONS, pl.col("_loc")),
            manager=pl.when(number == 1).then(None).otherwise(_id_expr(manager_number)),
            hire_date=(start + pl.duration(days=hire_days)).dt.strftime("%Y-%m-%d"),
            status=_pick(STATUSES, pl.col("_status")),
            cost_center=pl.lit("CC") + pl.col("_cc").cast(pl.String),
        )
    )
    return frame


def build_changed(base: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, dict[str, int]]:
    """Remove exactly N//200 rows and change one attribute in exactly N//100 other rows.

    Rows are ranked by a hash; the lowest ranks are removed and the next ones changed, so the
    two sets are disjoint and their sizes exact.
    """
    rows = base.height
    n_removed = rows // 200
    n_changed = rows // 100
    ranked = base.with_columns(
        _rank=_rand(seed, 20).rank("ordinal").cast(pl.Int64) - 1,
        _which=_below(seed, 21, len(CHANGEABLE)),
        _shift=_below(seed, 22, 1_000_000),
    )
    kept = ranked.filter(pl.col("_rank") >= n_removed)
    is_changed = pl.col("_rank") < n_removed + n_changed

    def changed_when(attr: str) -> pl.Expr:
        return is_changed & (pl.col("_which") == CHANGEABLE.index(attr))

    def rotate(column: str, vocab_len: int) -> pl.Expr:
        # 1 + shift % (len-1) never lands back on the same index, so the value really changes.
        step = pl.col("_shift") % (vocab_len - 1) + 1
        return (pl.col(column) + step) % vocab_len

    # STATUSES repeats "active"; move any active row to a non-active value (and vice versa).
    status_new = (
        pl.when(pl.col("status") == "active")
        .then(
            pl.when(pl.col("_shift") % 2 == 0).then(pl.lit("leave")).otherwise(pl.lit("inactive"))
        )
        .otherwise(pl.lit("active"))
    )
    # A different cost centre in 100..999: step 1..899 around the ring of 900 values.
    cost_center_new = (pl.col("_cc") - 100 + pl.col("_shift") % 899 + 1) % 900 + 100
    changed = kept.with_columns(
        email=pl.when(changed_when("email"))
        .then(pl.col("email").str.replace("@", "@corp.", literal=True))
        .otherwise(pl.col("email")),
        department=pl.when(changed_when("department"))
        .then(_pick(DEPARTMENTS, rotate("_dept", len(DEPARTMENTS))))
        .otherwise(pl.col("department")),
        title=pl.when(changed_when("title"))
        .then(_pick(TITLES, rotate("_title", len(TITLES))))
        .otherwise(pl.col("title")),
        location=pl.when(changed_when("location"))
        .then(_pick(LOCATIONS, rotate("_loc", len(LOCATIONS))))
        .otherwise(pl.col("location")),
        status=pl.when(changed_when("status")).then(status_new).otherwise(pl.col("status")),
        cost_center=pl.when(changed_when("cost_center"))
        .then(pl.lit("CC") + cost_center_new.cast(pl.String))
        .otherwise(pl.col("cost_center")),
    )
    by_attr = (
        changed.filter(is_changed).group_by("_which").len().sort("_which").to_dict(as_series=False)
    )
    counts = {CHANGEABLE[w]: int(c) for w, c in zip(by_attr["_which"], by_attr["len"], strict=True)}
    return changed, counts


def _verify(base: pl.DataFrame, changed: pl.DataFrame, n_changed: int, n_removed: int) -> None:
    """Fail loudly unless the variant differs from the base exactly as the manifest claims."""
    attrs = [c for c in COLUMNS if c != "id"]
    joined = base.join(changed, on="id", how="left", suffix="_new")
    removed = joined.filter(pl.col("name_new").is_null()).height
    diffs = joined.filter(pl.col("name_new").is_not_null()).select(
        pl.sum_horizontal([(pl.col(a) != pl.col(f"{a}_new")).cast(pl.Int32) for a in attrs]).alias(
            "n"
        )
    )
    per_row = diffs["n"].value_counts().sort("n").to_dict(as_series=False)
    counts = dict(zip(per_row["n"], per_row["count"], strict=True))
    if removed != n_removed or counts.get(1, 0) != n_changed or set(counts) - {0, 1}:
        raise AssertionError(
            f"changed variant is wrong: removed={removed} (want {n_removed}), "
            f"attributes-changed-per-row histogram={counts} (want {{1: {n_changed}}})"
        )
    if base["id"].n_unique() != base.height:
        raise AssertionError("ids are not unique")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def paths_for(size: int, data_dir: Path) -> tuple[Path, Path, Path]:
    """(base csv, changed csv, manifest json) for one size."""
    return (
        data_dir / f"accounts_{size}.csv",
        data_dir / f"accounts_{size}_changed.csv",
        data_dir / f"accounts_{size}.json",
    )


def load_manifest(size: int, data_dir: Path) -> DatasetManifest | None:
    """The manifest for ``size`` if it and both files exist and match this generator version."""
    base, changed, manifest = paths_for(size, data_dir)
    if not (base.exists() and changed.exists() and manifest.exists()):
        return None
    data = json.loads(manifest.read_text())
    if data.get("format_version") != FORMAT_VERSION:
        return None
    found = DatasetManifest(**data)
    if base.stat().st_size != found.base_bytes or changed.stat().st_size != found.changed_bytes:
        return None
    return found


def generate(size: int, data_dir: Path, seed: int = DEFAULT_SEED) -> DatasetManifest:
    """Write both CSVs and the manifest for one size; returns the manifest."""
    data_dir.mkdir(parents=True, exist_ok=True)
    base_path, changed_path, manifest_path = paths_for(size, data_dir)
    started = time.perf_counter()
    frame = build_accounts(size, seed)
    changed, by_attr = build_changed(frame, seed)
    _verify(frame.select(COLUMNS), changed.select(COLUMNS), size // 100, size // 200)
    frame.select(COLUMNS).write_csv(base_path)
    changed.select(COLUMNS).write_csv(changed_path)
    elapsed = time.perf_counter() - started
    manifest = DatasetManifest(
        format_version=FORMAT_VERSION,
        seed=seed,
        rows=size,
        base_file=base_path.name,
        changed_file=changed_path.name,
        base_bytes=base_path.stat().st_size,
        changed_bytes=changed_path.stat().st_size,
        base_sha256=_sha256(base_path),
        changed_sha256=_sha256(changed_path),
        changed_rows=size // 100,
        removed_rows=size // 200,
        changed_file_rows=changed.height,
        changed_by_attribute=by_attr,
        generation_seconds=round(elapsed, 3),
    )
    manifest_path.write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def ensure(size: int, data_dir: Path, seed: int = DEFAULT_SEED) -> DatasetManifest:
    """Reuse existing data for ``size`` when it matches the seed and version, else generate it."""
    found = load_manifest(size, data_dir)
    if found is not None and found.seed == seed:
        return found
    return generate(size, data_dir, seed)


def parse_sizes(text: str) -> list[int]:
    """Parse ``10000,100000`` (also accepts ``10k``, ``1m``)."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        scale = 1
        if part[-1] in "km":
            scale = 1_000 if part[-1] == "k" else 1_000_000
            part = part[:-1]
        value = int(float(part) * scale)
        if value < 200:
            raise argparse.ArgumentTypeError(f"size {value} too small (need >= 200 rows)")
        sizes.append(value)
    return sizes


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: generate (or regenerate with --force) each requested size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--force", action="store_true", help="regenerate even if data is current")
    args = parser.parse_args(argv)
    for size in args.sizes:
        started = time.perf_counter()
        manifest = (
            generate(size, args.data_dir, args.seed)
            if args.force
            else ensure(size, args.data_dir, args.seed)
        )
        took = time.perf_counter() - started
        print(
            f"{size:>9,} rows: {manifest.base_file} {manifest.base_bytes / 1e6:8.1f} MB "
            f"({manifest.base_bytes / size:.0f} B/row), {manifest.changed_file} "
            f"[{manifest.changed_rows} changed, {manifest.removed_rows} removed] "
            f"in {took:.2f}s (generation {manifest.generation_seconds:.2f}s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
