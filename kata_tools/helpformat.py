"""`--help` wrapped by the columns a terminal shows, not by characters: Hangul takes two.

click wraps help text at 78 characters, so a Korean help line spread over 110 columns or more.
`by_display_width(command)` gives the command, and every command below it, a help formatter that
wraps paragraphs and the option list by display width (unicodedata's East Asian width). A
paragraph that starts with click's marker line "\\b" keeps its line breaks, as in click.
"""

from __future__ import annotations

import unicodedata


def width(text: str) -> int:
    """Terminal columns of `text`: two for each wide or full-width character."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, limit: int, initial: str = "", subsequent: str = "") -> str:
    """Paragraphs (blank-line separated) each wrapped at `limit` columns, indents included."""
    out = []
    for paragraph in text.strip("\n").split("\n\n"):
        lines = paragraph.splitlines()
        if lines and lines[0].strip() == "\b":  # click's "do not rewrap" marker
            out.append("\n".join(initial + line.rstrip() for line in lines[1:]))
            continue
        line, done = initial, []
        for word in paragraph.split():
            if line.strip() and width(line) + 1 + width(word) > limit:
                done.append(line)
                line = subsequent + word
            else:
                line = f"{line} {word}" if line.strip() else line + word
        done.append(line)
        out.append("\n".join(done))
        initial = subsequent
    return "\n\n".join(out)


def _formatter(base):
    class DisplayWidthFormatter(base):
        def write_text(self, text: str) -> None:
            indent = " " * self.current_indent
            self.write(wrap(text, self.width, indent, indent) + "\n")

        def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
            rows = list(rows)
            first_col = min(max((width(first) for first, _ in rows), default=0), col_max) + col_spacing
            for first, second in rows:
                self.write(" " * self.current_indent + first)
                if not second:
                    self.write("\n")
                    continue
                if width(first) <= first_col - col_spacing:
                    self.write(" " * (first_col - width(first)))
                else:
                    self.write("\n" + " " * (first_col + self.current_indent))
                pad = " " * (first_col + self.current_indent)  # where the second column starts
                self.write(wrap(second, self.width, pad, pad)[len(pad) :] + "\n")

    return DisplayWidthFormatter


def help_option_says(command, text: str) -> None:
    """The help of `command`'s own -h/--help option (click's "Show this message and exit.")."""
    original = command.get_help_option

    def get_help_option(ctx):
        option = original(ctx)
        if option is not None:
            option.help = text
        return option

    command.get_help_option = get_help_option


def by_display_width(command) -> None:
    """Wrap the help of `command` and every command below it by display width."""
    base = command.context_class
    # A subclass of the command's own context class, made here: mypy cannot see a variable base.
    Context = type("Context", (base,), {"formatter_class": _formatter(base.formatter_class)})

    stack = [command]
    while stack:
        cmd = stack.pop()
        cmd.context_class = Context
        stack.extend(getattr(cmd, "commands", {}).values())
