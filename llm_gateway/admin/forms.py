"""The admin's model-form base: JSON fields that must hold a list or an object; alias targets checked."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms

from llm_gateway.model_access import aliases_outside, aliases_outside_message

# Django would print these as "Rpm limit" and "Tpm limit".
LIMIT_LABELS = {"rpm_limit": "RPM limit", "tpm_limit": "TPM limit", "rpm": "RPM", "tpm": "TPM"}

_EXAMPLES = {list: 'a JSON list, e.g. ["gpt-4o"]', dict: 'a JSON object, e.g. {"team": "search"}'}


class JsonShapeForm(forms.ModelForm):
    """Check that each JSON field in ``json_shapes`` holds its type; an emptied field holds an empty one.

    The request path reads these fields as a list or a dict: a string or a number saved by mistake
    would fail there, at the first request, instead of here.
    """

    json_shapes: ClassVar[dict[str, type]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.json_shapes:
            if name in self.fields:
                self.fields[name].widget.attrs["rows"] = 3

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        for name, shape in self.json_shapes.items():
            if name not in cleaned_data:  # read-only here, or already invalid JSON
                continue
            value = cleaned_data[name]
            if value is None:
                cleaned_data[name] = shape()
            elif not isinstance(value, shape):
                self.add_error(name, f"Enter {_EXAMPLES[shape]}.")
        return cleaned_data


def aliases_clean(form: forms.ModelForm, *, field: str, allow_lists: list[Any], owner: str) -> None:
    """Add an error to ``field`` (aliases) if one points at a model group ``allow_lists`` do not allow.

    Only lists the form cleaned (or the instance holds) are passed; one of the wrong shape is left
    to ``JsonShapeForm`` to report.
    """
    aliases = form.cleaned_data.get(field)
    if not isinstance(aliases, dict):
        return
    if not all(isinstance(target, str) and target for target in aliases.values()):
        form.add_error(field, 'Each alias names a model group: {"alias": "model group"}.')
        return
    lists = [allowed for allowed in allow_lists if isinstance(allowed, list | tuple)]
    outside = aliases_outside(aliases, *lists)
    if outside:
        form.add_error(field, aliases_outside_message(aliases, outside, owner))
