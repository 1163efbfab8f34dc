"""Results that outlive a Colab runtime: the output folder kept on Google Drive.

:func:`keep_on_drive` mounts Google Drive (``google.colab.drive``) unless it is mounted already, makes
``My Drive/sa3lab/<folder name>`` and turns the output folder into a link to it: runs already saved
move there, and every notebook of the runtime that saves to the same ``OUTPUT_DIR`` (runs, sweeps,
notebook 04's LoRA files) then writes to Drive without changing a line. Tested against a plain
folder standing in for the mount; the mount itself only happens on Colab.
"""

from __future__ import annotations

import shutil
from pathlib import Path

DRIVE_ROOT = Path("/content/drive")  # where Colab mounts Google Drive
DRIVE_FOLDER = "sa3lab"  # the folder in My Drive that holds the kept output folders


def mount_drive(root: Path) -> None:
    """Mount Google Drive at ``root`` through Colab's own dialog (ValueError with one sentence elsewhere)."""
    try:
        from google.colab import drive
    except ImportError:
        raise ValueError(
            "Keeping results on Google Drive needs Google Colab (google.colab.drive); elsewhere choose an "
            "OUTPUT_DIR on a disk that stays."
        ) from None
    drive.mount(str(root))


def keep_on_drive(output_dir, root: Path = DRIVE_ROOT, mount=mount_drive) -> tuple[Path, str]:
    """(the Drive folder, a sentence saying where results now go) after linking ``output_dir`` to it."""
    local = Path(str(output_dir)).expanduser()
    if local.name in ("", ".", ".."):
        raise ValueError(
            f"The output folder {output_dir!r} has no name to keep on Drive; use e.g. 'outputs'."
        )
    my_drive = Path(root) / "MyDrive"
    if not my_drive.is_dir():
        mount(Path(root))
    if not my_drive.is_dir():
        raise ValueError(
            f"Google Drive is not mounted at {root}: allow access in the dialog, then try again."
        )
    target = my_drive / DRIVE_FOLDER / local.name
    where = f"{target} (My Drive > {DRIVE_FOLDER} > {local.name})"
    if local.is_symlink() and local.resolve() == target.resolve():
        return target, f"Results already go to Google Drive: {where}."
    if local.exists() and not local.is_dir():
        raise ValueError(f"{local} is a file, not a folder: move it away, then try again.")
    target.mkdir(parents=True, exist_ok=True)
    moved, clashing = 0, []
    if local.is_symlink():
        local.unlink()  # a link to somewhere else: its files stay there
    elif local.is_dir():
        for entry in sorted(local.iterdir()):
            if (target / entry.name).exists():
                clashing.append(entry.name)
            else:
                shutil.move(str(entry), str(target / entry.name))
                moved += 1
        if clashing:
            local.rename(local.with_name(local.name + ".before-drive"))
        else:
            local.rmdir()
    local.parent.mkdir(parents=True, exist_ok=True)
    local.symlink_to(target.resolve(), target_is_directory=True)
    said = f"Results now go to Google Drive: {where}; {local} links there, so they outlive this runtime"
    if moved:
        said += f", and the {moved} file{'s' * (moved != 1)} already saved moved there"
    if clashing:
        said += (
            f", except {len(clashing)} whose name Drive already had, kept in "
            f"{local.with_name(local.name + '.before-drive')}"
        )
    return target, said + "."
