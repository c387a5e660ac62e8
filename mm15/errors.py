"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """A mistake in the user's input, configuration or environment, with a message that says what to do."""


class DiskFullError(UserError):
    """A write failed because its filesystem is full; the message names the path and what is free."""

    def __init__(self, path: object, needed: int | None = None):
        import shutil
        from pathlib import Path

        folder = Path(str(path))
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        free = shutil.disk_usage(folder).free
        need = f"; it needs more than {_mb(needed)}" if needed else ""
        super().__init__(
            f"no space left on the device writing {path} ({_mb(free)} free there{need}): free some space "
            "and rerun; finished work is kept and nothing half-written is left"
        )


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"
