"""``python -m sa3lab bundle`` (a workshop bundle) and ``python -m sa3lab sync-notebooks`` (maintainers)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sa3lab")
    commands = parser.add_subparsers(dest="command", required=True)
    bundle = commands.add_parser(
        "bundle", help="a folder and a zip with the wheel, the notebooks and the chosen models' cache"
    )
    bundle.add_argument("--models", required=True, help="comma-separated, e.g. small-music,same-s")
    bundle.add_argument(
        "--out", required=True, type=Path, help="the bundle folder to write (DIR and DIR.zip)"
    )
    bundle.add_argument(
        "--wheel", type=Path, help="a wheel from `make dist` (default: built from this checkout)"
    )
    bundle.add_argument("--no-zip", action="store_true", help="write the folder only")
    commands.add_parser(
        "sync-notebooks", help="rewrite the notebooks' badges and install cell from pyproject.toml"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "bundle":
            from .auth import resolve_token
            from .bundle import make_bundle

            models = [m.strip() for m in args.models.split(",") if m.strip()]
            token = resolve_token().token
            out = make_bundle(models, args.out, args.wheel, token, zip_it=not args.no_zip)
            print(f"The bundle is ready: {out}" + ("" if args.no_zip else f" and {out}.zip"))
        else:
            from .bundle import checkout_root
            from .notebook_setup import sync

            changed = sync(checkout_root())
            print("rewritten: " + (", ".join(changed) or "nothing (all up to date)"))
    except ValueError as exc:  # one sentence (the Hub's, a bad model name, a failed build); never a token
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
