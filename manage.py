#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    from portal.env import ConfigurationError

    try:
        execute_from_command_line(sys.argv)
    except ConfigurationError as exc:
        # A setting is wrong: say which, without a traceback through Django's internals.
        sys.stderr.write(f"manage.py: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
