"""Allow ``python -m pbs_demo``."""

from pbs_demo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
