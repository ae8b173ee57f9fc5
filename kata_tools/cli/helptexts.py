"""`--help` of every `kata` command in the learner's language, from kata_tools/messages/cli.toml.

The help of a command is [help-<command>] (help-kata for `kata` itself, help-dev-check for `kata
dev check`), that of one of its options or arguments [help-<command>-<parameter>] (help-watch-once).
They are set on the click commands when `kata` runs, after `--lang` is read, so `kata --lang ko
watch --help` is Korean too; the command functions keep their docstrings for the code's reader.
"""

from __future__ import annotations

from kata_tools import helpformat, i18n


def key_of(path: str, param: str | None = None) -> str:
    """help-<command path>[-<parameter>], dashes for spaces and underscores."""
    parts = ["help", *(path.split() or ["kata"]), *([param] if param else [])]
    return "-".join(p.strip("_").replace("_", "-") for p in parts)


def helped(command, path: str = ""):
    """(key, object with .help) of a command and every option and argument below it."""
    yield key_of(path), command
    for param in command.params:
        if hasattr(param, "help"):
            yield key_of(path, param.name), param
    for name, sub in getattr(command, "commands", {}).items():
        yield from helped(sub, f"{path} {name}".strip())


def localize(command) -> None:
    """Put the help texts of the current language on `command` and everything below it."""
    say = i18n.tool("cli")
    for key, item in helped(command):
        if key in say:
            item.help = say(key)
        if hasattr(item, "get_help_option"):
            helpformat.help_option_says(item, say("help-option"))
