"""``python -m flowengine``."""

from flowengine.cli import main

if __name__ == "__main__":
    main()
