"""`python -m triage`: the same CLI as the `hightouch-triage` script (see triage/cli.py)."""

from triage.cli import entry_point

__all__ = ["entry_point"]

if __name__ == "__main__":
    entry_point()
