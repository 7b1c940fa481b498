"""How the admin shows values: money, and a secret that is shown once."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils.html import format_html
from django.utils.safestring import SafeString
from unfold.widgets import BUTTON_CLASSES, INPUT_CLASSES

_MICRO_DOLLAR = Decimal("0.000001")

# Select the secret and copy it; navigator.clipboard exists only on https:// and localhost pages.
_COPY_SCRIPT = (
    "const field = this.previousElementSibling; field.select();"
    " if (navigator.clipboard) { navigator.clipboard.writeText(field.value); }"
    " else { document.execCommand('copy'); }"
    " this.textContent = 'Copied';"
)


def usd(amount: Decimal | None) -> str:
    """Return an amount in USD with at least cents and at most micro-dollars: $0.00, $0.000125."""
    if amount is None:
        return "-"
    whole, _, fraction = f"{amount.quantize(_MICRO_DOLLAR):,f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def usd_text(rendered: str) -> str:
    """Return a read-only amount field's rendered text in USD (for unfold's readonly_preprocess_fields)."""
    try:
        return usd(Decimal(rendered))
    except InvalidOperation:  # the empty-value dash
        return rendered


def secret_message(headline: str, secret: str) -> SafeString:
    """Return a message showing ``secret`` once, in a read-only field with a copy button."""
    return format_html(
        "{} Copy the secret now: it is not stored and will not be shown again."
        '<span class="flex gap-2 items-center mt-2">'
        '<input type="text" readonly value="{}" aria-label="Secret" data-secret'
        ' class="{} font-mono" onfocus="this.select()">'
        '<button type="button" class="{}" onclick="{}">Copy</button>'
        "</span>",
        headline,
        secret,
        " ".join(INPUT_CLASSES),
        " ".join(BUTTON_CLASSES),
        _COPY_SCRIPT,
    )
