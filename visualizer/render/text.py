"""Text renderings of a ladder layout: a terminal ladder (ASCII) and a Mermaid sequence diagram.

Standard library only: both read the same :class:`~visualizer.render.layout.LadderLayout`
as the matplotlib ladder.
"""

from __future__ import annotations

from visualizer.render.layout import Arrow, Call, Fold, Gap, LadderLayout, Mark

ASCII_WIDTH = 110
_ASCII_HEADS = {"rst": "X", "ack": ">", "udp": ">", "icmp": ">"}
_ASCII_LINES = {"ack": ".", "udp": "~", "icmp": ":", "rst": "=", "retransmission": "!"}


def to_ascii(layout: LadderLayout, *, width: int = ASCII_WIDTH) -> str:
    """A ladder for a terminal: one line per frame, time on the left, events on the right."""
    participants = layout.participants
    gutter = 20
    events_width = 30
    span = max(40, width - gutter - events_width)
    columns = [gutter + (span * index // max(1, len(participants) - 1)) for index in range(len(participants))]
    if len(participants) <= 1:
        columns = [gutter + span // 2]
    lines = []
    if layout.title:
        lines.append(layout.title)
    header = [" "] * (gutter + span + events_width)
    for participant, column in zip(participants, columns):
        label = participant.label
        start = max(0, min(column - len(label) // 2, len(header) - len(label)))
        header[start : start + len(label)] = list(label)
    lines.append("".join(header).rstrip())
    lifeline = [" "] * (gutter + span + 1)
    for column in columns:
        lifeline[column] = "|"
    origin = layout.origin_ns
    for row in layout.rows:
        canvas = list(lifeline)
        if isinstance(row, Arrow) and row.source == row.target:
            # A layout made elsewhere may hold a frame sent to its sender: a mark, not a crash.
            row = Mark(row.frame, row.time_ns, row.delta_ns, row.source, f"{row.label} (to itself)", row.tooltip, False)
        if isinstance(row, Mark):
            lines.append(_ascii_mark(row, canvas, columns, origin, gutter))
        elif isinstance(row, Arrow):
            left, right = sorted((columns[row.source], columns[row.target]))
            line = _ASCII_LINES.get(row.kind, "-")
            for position in range(left + 1, right):
                canvas[position] = line
            head = _ASCII_HEADS.get(row.kind, ">")
            if columns[row.target] > columns[row.source]:
                canvas[right - 1] = head
            elif right > left:  # an endpoint to itself (same address and port) has no arrow head
                canvas[left + 1] = "<" if head == ">" else head
            label = _fit(row.label, right - left - 6)
            middle = (left + right) // 2 - len(label) // 2
            canvas[middle : middle + len(label)] = list(label)
            time = "" if row.time_ns is None or origin is None else f"{(row.time_ns - origin) / 1e9:.6f}"
            prefix = f"#{row.frame:<5} {time:>12} "
            text = prefix + "".join(canvas)[len(prefix) :]
            events = "  ".join(row.events)
            states = _state_note(row)
            lines.append(
                (text.rstrip().ljust(gutter + span + 2) + " " + "  ".join(filter(None, [events, states]))).rstrip()
            )
        elif isinstance(row, Fold):
            text = "".join(canvas)
            note = f" {row.description} "
            # Centred between the outer lifelines; a note longer than that starts after the gutter.
            middle = max(gutter, (columns[0] + columns[-1]) // 2 - len(note) // 2)
            text = text[:middle] + note + text[middle + len(note) :]
            lines.append(f"#{row.first_frame}-{row.last_frame}".ljust(gutter)[:gutter] + text[gutter:].rstrip())
            for folded in row.calls:
                note = f"{participants[folded.participant].role} program: {folded.text}"
                lines.append("".join(lifeline).rstrip().ljust(gutter + span + 2) + " " + note)
        elif isinstance(row, Call):
            note = f"{participants[row.participant].role} program: {_call_text(row)}"
            lines.append("".join(canvas).rstrip().ljust(gutter + span + 2) + " " + note)
        elif isinstance(row, Gap):
            text = "".join("~" if character == "|" else character for character in canvas)
            note = f" {row.seconds:.1f} s idle "
            middle = (columns[0] + columns[-1]) // 2 - len(note) // 2
            lines.append((text[:middle] + note + text[middle + len(note) :]).rstrip())
    return "\n".join(lines) + "\n"


def _ascii_mark(row: Mark, canvas: list[str], columns: list[int], origin: int | None, gutter: int) -> str:
    """A marked row: ``*`` on the sender's lifeline with the text to its right, or the text across
    the lifelines between ``!`` when the sender is unknown."""
    text = f" {row.text} "
    if row.participant is None:
        left, right = columns[0], columns[-1]
        note = "!" + text.center(max(right - left - 1, len(text)), "-") + "!"
        start = max(gutter, (left + right) // 2 - len(note) // 2)
    else:
        start = columns[row.participant]
        note = "*" + text
    canvas[start : start + len(note)] = list(note)
    time = "" if row.time_ns is None or origin is None else f"{(row.time_ns - origin) / 1e9:.6f}"
    prefix = f"#{row.frame:<5} {time:>12} "
    return (prefix + "".join(canvas)[len(prefix) :]).rstrip()


def _fit(text: str, limit: int) -> str:
    limit = max(limit, 8)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _state_note(row: Arrow) -> str:
    if row.protocol != "tcp":
        return ""
    notes = []
    if row.state_changed[0]:
        notes.append(f"sender→{row.sender_state}")
    if row.state_changed[1]:
        notes.append(f"receiver→{row.receiver_state}")
    return "[" + ", ".join(notes) + "]" if notes else ""


_MERMAID_ARROWS = {"ack": "-->>", "rst": "-x", "udp": "-)", "icmp": "--)"}


def _mermaid_text(text: str) -> str:
    """Escape what Mermaid would read as syntax (entity codes, as Mermaid documents them)."""
    replacements = {"#": "#35;", ";": "#59;", "<": "#lt;", ">": "#gt;", ":": "#58;", '"': "#quot;"}
    return "".join(replacements.get(character, character) for character in text)


def to_mermaid(layout: LadderLayout) -> str:
    """A Mermaid ``sequenceDiagram`` for Markdown documents (GitHub, GitLab, mkdocs render it)."""
    names = [f"P{index}" for index in range(len(layout.participants))]
    lines = ["sequenceDiagram"]
    if layout.title:
        lines.append(f"    title {_mermaid_text(layout.title)}")
    for name, participant in zip(names, layout.participants):
        lines.append(f"    participant {name} as {_mermaid_text(participant.label)}")
    if not names and any(isinstance(row, Mark) for row in layout.rows):
        names = ["P0"]  # Mermaid places notes over participants: one for frames of unknown senders
        lines.append("    participant P0 as sender unknown")
    for row in layout.rows:
        if isinstance(row, Arrow) and row.source == row.target:
            row = Mark(row.frame, row.time_ns, row.delta_ns, row.source, f"{row.label} (to itself)", row.tooltip, False)
        if isinstance(row, Mark):
            over = names[row.participant] if row.participant is not None else f"{names[0]},{names[-1]}"
            if len(names) == 1:
                over = names[0]
            lines.append(f"    Note over {over}: {_mermaid_text(f'#{row.frame} {row.text}')}")
        elif isinstance(row, Arrow):
            arrow = _MERMAID_ARROWS.get(row.kind, "->>")
            source, target = names[row.source], names[row.target]
            lines.append(f"    {source}{arrow}{target}: {_mermaid_text(f'#{row.frame} {row.label}')}")
            if row.protocol == "tcp":
                if row.state_changed[0]:
                    lines.append(f"    Note over {source}: {row.sender_state}")
                if row.state_changed[1]:
                    lines.append(f"    Note over {target}: {row.receiver_state}")
            if row.events:
                lines.append(f"    Note right of {target}: {_mermaid_text('; '.join(row.events))}")
        elif isinstance(row, Fold):
            lines.append(f"    Note over {names[0]},{names[-1]}: {_mermaid_text(row.description)}")
            for folded in row.calls:
                lines.append(f"    Note {_beside(folded.participant, names)}: {_mermaid_text(folded.text)}")
        elif isinstance(row, Call):
            lines.append(f"    Note {_beside(row.participant, names)}: {_mermaid_text(_call_text(row))}")
        elif isinstance(row, Gap):
            lines.append(f"    Note over {names[0]},{names[-1]}: {row.seconds:.1f} s idle")
    return "\n".join(lines) + "\n"


def _call_text(row: Call) -> str:
    """A socket call in a text ladder: the call, and a send's quoted bytes."""
    return f"{row.text} {row.quote}".rstrip()


def _beside(participant: int, names: list[str]) -> str:
    """Where a program's note stands in Mermaid: outside its lifeline (the first one's left)."""
    return f"left of {names[participant]}" if participant == 0 else f"right of {names[participant]}"
