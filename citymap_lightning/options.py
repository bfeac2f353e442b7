"""The command line checked before torch and Lightning are imported: a mistyped option is refused at once.

Importing torch and Lightning takes seconds; a typo should not. :func:`check_early` reads the
command line against :mod:`~citymap_lightning.option_manifest` (the option names of each subcommand
and the registered choices, generated from the real parser and registries and kept in sync by a
test) and refuses, in one line:

- an input file that is missing or cannot be read (``--data.path``, ``--data.positions``, ...);
- an option no subcommand has (with the closest known one: ``did you mean --model.loss?``);
- a value outside a registered choice (``--model.loss=weighted-stress``: ``did you mean weighted_stress?``).

What it cannot tell without torch or Lightning (the settings of ``--optimizer CLASS``, a logger's
or callback's, a data module of the user's own) it leaves to the parser, which refuses later.
This module imports nothing heavier than the standard library.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from citymap_lightning import paths
from citymap_lightning.errors import CitymapError, ConfigError
from citymap_lightning.option_manifest import MANIFEST

PATH_OPTIONS = {"-c": "config file", "--config": "config file", "--ckpt_path": "checkpoint", "--data.path": "data file",
                "--data.names": "names file", "--data.anchors": "anchors file",
                "--data.positions": "positions file", "--data.predict_from": "checkpoint"}  # fmt: skip
"""Options that name an input file, checked before anything reads them (``--ckpt_path last`` is resolved later)."""

HELP = ("-h", "--help")
"""Options after which argparse prints the help, whatever else the line holds."""

EXIT_INPUT = 2
"""Exit status of an error the user can fix (input, option, file, resources): one line on stderr."""

_NEGATIVE_NUMBER = re.compile(r"^-\d|^-\.\d")


def one_line(message: str, limit: int = 1000) -> str:
    """``message`` on one line (whatever the names in it hold), cut at ``limit`` characters."""
    line = " ".join(message.split())
    return line if len(line) <= limit else line[:limit] + " ..."


def refuse_early(argv: Sequence[str]) -> int | None:
    """Run :func:`check_early`; print its refusal as the CLI prints errors (``error: ...``) and return the status.

    None when nothing was refused: the CLI goes on to import torch and Lightning.
    """
    try:
        check_early(list(argv))
    except CitymapError as error:
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        return EXIT_INPUT
    return None


def check_early(argv: list[str]) -> None:
    """Refuse input files, option names and choice values that cannot work, in one line, without torch."""
    for _option, _value in checked_paths(argv):
        pass
    if argv[:1] == ["compare"] or any(token in HELP for token in argv):
        return
    found = _subcommand(argv)
    if found is None:
        return
    at, subcommand = found
    given = list(_options(argv[at + 1 :]))
    data_is_ours = _data_is_ours(given, argv)
    known = set(_subcommand_options(subcommand)) | set(MANIFEST["links"])
    if data_is_ours:
        known |= {f"--data.{name}" for name in MANIFEST["data_options"]}
    for name, _value in given:
        if name not in known and not _checked_later(name, known, data_is_ours):
            raise ConfigError(unknown_option(name.lstrip("-"), name, suggestions(subcommand)))
    for name, value in given:
        key = name.lstrip("-")
        if value is not None and key in MANIFEST["choices"] and (data_is_ours or not key.startswith("data.")):
            check_choice(key, value, name)


def checked_paths(argv: list[str]) -> Iterator[tuple[str, str]]:
    """Each input-file option of ``argv`` and its value, once the file is checked (exists, is a readable file).

    ``--ckpt_path last`` and ``best`` are yielded unchecked: the CLI finds the checkpoint later.
    """
    for k, arg in enumerate(argv):
        option, equals, value = arg.partition("=")
        option = _normal(option)
        if option not in PATH_OPTIONS:
            continue
        if not equals and k + 1 < len(argv):
            value = argv[k + 1]
        if (equals or k + 1 < len(argv)) and not value.strip():
            raise ConfigError(f"{option} is empty: give a file")
        if not value:
            continue
        if option != "--ckpt_path" or value not in ("last", "best"):
            paths.check_file(value, PATH_OPTIONS[option])
            if PATH_OPTIONS[option] == "config file":
                paths.read_text(value, "config file")
        yield option, value


def check_choice(key: str, value: str, shown: str | None = None) -> None:
    """Refuse a value outside the registered choices of option ``key`` (``model.loss``), naming the closest one."""
    choices = MANIFEST["choices"].get(key)
    if choices is None or value in choices:
        return
    close = closest(value, choices)
    hint = f"did you mean {close}? " if close else ""
    what = key.rsplit(".", 1)[-1]
    raise ConfigError(f"{shown or key}: unknown {what} {value!r}: {hint}expected one of {', '.join(choices)}")


def closest(value: str, choices: Sequence[str]) -> str | None:
    """The choice ``value`` was most likely meant as: the same but for case, dashes and spaces, else the closest."""
    normal = {_folded(c): c for c in choices}
    if _folded(value) in normal:
        return normal[_folded(value)]
    close = difflib.get_close_matches(value, list(choices), n=1)
    return close[0] if close else None


def unknown_option(key: str, shown: str, known: list[str]) -> str:
    """``SHOWN: unknown option``, with the closest known option (``did you mean --model.loss?``).

    ``key`` is the option's name without dashes, ``shown`` how it was written.
    """
    close = difflib.get_close_matches(key, known, n=1)
    dashes = "--" if shown.startswith("-") else ""
    hint = f"; did you mean {dashes}{close[0]}?" if close else " (see --help)"
    return f"{shown}: unknown option{hint}"


def suggestions(subcommand: str) -> list[str]:
    """The option names (without ``--``) offered as the closest known one: the subcommand's, the data's included."""
    options = [*MANIFEST["root_options"], *_subcommand_options(subcommand)]
    known = [o[2:] for o in options if o.startswith("--") and not o.endswith(".help")]
    known += [f"data.{name}" for name in MANIFEST["data_options"]]
    return list(dict.fromkeys(known))


def _subcommand_options(subcommand: str) -> list[str]:
    """The options (``--model.loss``, ``-h``) the parser of ``subcommand`` takes, ``+`` of lists dropped."""
    return [*MANIFEST["common_options"], *MANIFEST["options"][subcommand]]


def _folded(text: str) -> str:
    return re.sub(r"[\s_-]+", "_", text.strip().lower())


def _normal(option: str) -> str:
    """An option's name as the manifest has it: ``--data.init_args.path`` is ``--data.path``; ``+`` dropped."""
    option = option.rstrip("+")
    return option.replace("--data.init_args.", "--data.", 1) if option.startswith("--data.init_args.") else option


def _subcommand(argv: list[str]) -> tuple[int, str] | None:
    """Where in ``argv`` the subcommand is, and which; an unknown first word is refused, with the closest one."""
    subcommands = MANIFEST["subcommands"]
    skip = False
    for k, arg in enumerate(argv):
        if skip or arg.startswith("-"):
            skip = arg in ("-c", "--config")  # the parser's own options before the subcommand; these take a file
            continue
        if arg in subcommands:
            return k, arg
        if k == 0:
            close = difflib.get_close_matches(arg, subcommands, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"unknown subcommand {arg!r}: {hint}expected one of {', '.join(subcommands)}")
        return None  # the parser says what it expected
    return None


def _options(argv: list[str]) -> Iterator[tuple[str, str | None]]:
    """Each option of a subcommand's arguments, by its normal name (:func:`_normal`), and its value if it is clear."""
    for k, arg in enumerate(argv):
        if arg == "--":
            return
        if not arg.startswith("-") or _NEGATIVE_NUMBER.match(arg):
            continue
        option, equals, value = arg.partition("=")
        if equals:
            given: str | None = value
        elif k + 1 < len(argv) and not (argv[k + 1].startswith("-") and not _NEGATIVE_NUMBER.match(argv[k + 1])):
            given = argv[k + 1]
        else:
            given = None
        yield _normal(option), given


def _checked_later(name: str, known: set[str], data_is_ours: bool) -> bool:
    """Whether the parser, not this module, must judge option ``name``.

    Below an option whose class the user names (``--optimizer Adam --optimizer.lr``, a logger's
    settings, a data module of the user's own), or below one whose value is not a group of options
    (``--trainer.max_time.hours``), the settings come from signatures only torch or Lightning knows.
    """
    if ".init_args." in name or name.endswith((".class_path", ".init_args", ".dict_kwargs")) or ".dict_kwargs." in name:
        return True
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:end])
        if prefix not in known:
            continue
        if prefix == "--data":
            return not data_is_ours
        grouped = any(k.startswith(prefix + ".") and k != prefix + ".help" for k in known)
        return f"{prefix}.help" in known or not grouped
    return False


def _data_is_ours(given: list[tuple[str, str | None]], argv: list[str]) -> bool:
    """Whether ``--data.*`` sets the package's own data module, not a class named on the line or in a config file."""
    ours = MANIFEST["data_class"].rsplit(".", 1)[-1]
    for name, value in given:
        if name in ("--data", "--data.class_path") and value is not None and ours not in value:
            return False
    for option, value in checked_paths(argv):
        if option in ("-c", "--config") and not _config_data_is_ours(Path(value), ours):
            return False
    return True


def _config_data_is_ours(path: Path, ours: str) -> bool:
    """Whether a config file leaves the data module the package's own (no other ``class_path`` under ``data``)."""
    try:
        import yaml

        config = yaml.safe_load(paths.read_text(path, "config file"))
    except Exception:  # the parser reads it later and says what is wrong
        return False
    sections = [config, *(config.values() if isinstance(config, dict) else [])]
    for section in sections:
        data = section.get("data") if isinstance(section, dict) else None
        if isinstance(data, str) and ours not in data:
            return False
        if isinstance(data, dict) and ours not in str(data.get("class_path", ours)):
            return False
    return True
