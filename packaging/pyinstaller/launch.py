"""Entry script of the frozen app (PyInstaller runs this as `__main__`)."""

import sys

from dictation.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
