"""The inbox page: accepted messages drawn as a phone shows them, for people watching a demo."""

from __future__ import annotations

from html import escape

SHOWN = 200  # newest messages on the page; the JSON endpoint has them all

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="3">
<title>Vonage emulator inbox</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #eef0f3; margin: 0; padding: 1rem; }}
h1 {{ font-size: 1.2rem; }}
.phone {{ background: #fff; border-radius: 1.5rem; max-width: 26rem; margin: 0 0 1rem;
  padding: 1rem; box-shadow: 0 2px 8px #0002; display: inline-block; vertical-align: top;
  width: 26rem; margin-right: 1rem; }}
.to {{ font-weight: 600; border-bottom: 1px solid #ddd; padding-bottom: .5rem; }}
.bubble {{ background: #e5e5ea; border-radius: 1.1rem; padding: .5rem .8rem; margin: .6rem 0 .1rem;
  max-width: 85%; white-space: pre-wrap; overflow-wrap: anywhere; }}
.meta {{ color: #777; font-size: .75rem; }}
.empty {{ color: #777; }}
</style></head>
<body><h1>Vonage emulator inbox ({count} accepted)</h1>
{phones}
</body></html>
"""


def render_inbox(messages: list[dict[str, object]]) -> str:
    """Render messages grouped per recipient, newest first, every field HTML-escaped."""
    newest = list(reversed(messages))[:SHOWN]
    phones: dict[str, list[str]] = {}
    for message in newest:
        phones.setdefault(str(message["to"]), []).append(_bubble(message))
    if not phones:
        body = '<p class="empty">No messages yet. POST /v1/messages to fill this inbox.</p>'
    else:
        body = "\n".join(
            f'<section class="phone"><div class="to">+{escape(to)}</div>{"".join(bubbles)}'
            "</section>"
            for to, bubbles in phones.items()
        )
    return PAGE.format(count=len(messages), phones=body)


def _bubble(message: dict[str, object]) -> str:
    meta = (
        f"from {message['from']} · {message['time']} · {message['segments']} × "
        f"{message['encoding']}"
    )
    if message.get("client_ref"):
        meta += f" · ref {message['client_ref']}"
    return (
        f'<div class="bubble">{escape(str(message["text"]))}</div>'
        f'<div class="meta">{escape(meta)}</div>'
    )
