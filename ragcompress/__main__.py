"""`python -m ragcompress ...` is the `ragcompress` command."""

from ragcompress.cli import main

if __name__ == "__main__":
    main()
